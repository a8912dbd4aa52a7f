#pragma once

namespace boxoffice::app {

/// The whole command line: `boxoffice serve|token ...`. Returns the process exit code.
int main(int argc, char** argv);

}  // namespace boxoffice::app
