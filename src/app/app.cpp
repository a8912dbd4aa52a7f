#include "app/app.h"
// placeholder: being written
int boxoffice::app::main(int, char**) { return 1; }
