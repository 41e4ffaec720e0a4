/** \file
 * The dashboard (`GET /`): one HTML page that asks for a tenant's token (kept in the browser's localStorage, or given
 * as `#token=...`) and shows, refreshed every second from the API: the host's slots and what holds them, the
 * utilization and idle fraction over the last minutes, the tenant's jobs (an admin's: everyone's) by state, tenant and
 * priority, and a chosen job's loss curve (GET /v1/jobs/{id}/metrics) and log. No script from elsewhere: the page
 * draws its plots as SVG itself.
 */
#pragma once

#include <string_view>

namespace dojo::service {

std::string_view dashboard_html();

}  // namespace dojo::service
