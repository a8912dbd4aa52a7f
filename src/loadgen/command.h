#pragma once
// `boxoffice loadgen`: a flash sale played against a running server (see sale.h), with its own
// command line.

#include <string>
#include <vector>

namespace boxoffice::loadgen {

/// `args`: what follows `loadgen` on the command line. Prints the progress on stderr and the
/// Markdown report on stdout (and to --markdown, the JSON to --json). Returns 0 when every
/// invariant check passed, 1 when one failed or the sale could not run, 2 for a bad flag (one
/// line on stderr), 130 when interrupted.
int loadgen_main(const std::vector<std::string>& args);

}  // namespace boxoffice::loadgen
