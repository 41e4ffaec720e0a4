/** \file
 * The service's commands (service/server.h):
 *   `dojo tenant add NAME --state DIR [--admin] [--max-slots N] [--max-queued N]` prints the tenant's API token once.
 *   `dojo serve --state DIR [--listen 127.0.0.1:8470] [--scheduler local] [--slots N]` serves the HTTP/JSON API and
 *   runs the jobs on this host until SIGINT or SIGTERM.
 */
#pragma once

#include <CLI/CLI.hpp>

namespace dojo::cli {

void add_service_commands(CLI::App& app);

}  // namespace dojo::cli
