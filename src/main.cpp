#include "app/app.h"

int main(int argc, char** argv) { return boxoffice::app::main(argc, argv); }
