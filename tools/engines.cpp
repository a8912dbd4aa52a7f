// boxoffice-engines: starts Redis, PostgreSQL and NATS JetStream on loopback, in temporary
// directories, prints the BOXOFFICE_*_URL settings that point `boxoffice serve` at them, and
// keeps them running until interrupted (Ctrl-C, SIGTERM), then stops them and removes their
// files. The same helpers start the engines of the integration tests and of the benchmarks.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "support/production_engines.h"

int main(int argc, char** argv) {
  boxoffice::testing::ProductionEnginesOptions options;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--redis-aof") == 0) {
      options.redis_append_only = true;
    } else if (std::strcmp(argv[i], "--durable") == 0) {
      options.postgres_durable = true;
    } else {
      std::cerr
          << "usage: boxoffice-engines [--redis-aof] [--durable]\n"
             "  starts Redis, PostgreSQL and NATS on 127.0.0.1 until interrupted\n"
             "  --redis-aof   Redis with appendfsync always (survives a restart)\n"
             "  --durable     PostgreSQL flushing every commit (fsync on), as in production\n";
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  // Block the stop signals before the servers start, so every thread inherits the mask and the
  // signal is taken here by sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  try {
    std::cerr << "starting Redis, PostgreSQL and NATS on 127.0.0.1...\n";
    boxoffice::testing::ProductionEngines engines(options);
    std::cout << "export BOXOFFICE_REDIS_URL='" << engines.redis_url() << "'\n"
              << "export BOXOFFICE_POSTGRES_URL='" << engines.postgres_url() << "'\n"
              << "export BOXOFFICE_NATS_URL='" << engines.nats_url() << "'\n"
              << std::flush;
    std::cerr << "engines running; paste the lines above into another shell, then run "
                 "`boxoffice serve`. Ctrl-C stops them and removes their files.\n";
    int signal = 0;
    sigwait(&stop, &signal);
    std::cerr << "stopping the engines (" << strsignal(signal) << ")\n";
  } catch (const std::exception& e) {
    std::cerr << "boxoffice-engines: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
