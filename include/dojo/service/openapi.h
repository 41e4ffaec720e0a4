/** \file
 * The API's OpenAPI 3 document (`GET /openapi.json`): the paths, their request and reply bodies, and the bearer
 * token scheme, as server.h implements them.
 */
#pragma once

#include <nlohmann/json.hpp>

namespace dojo::service {

nlohmann::json openapi_document();

}  // namespace dojo::service
