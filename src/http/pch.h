#pragma once
// The heavy headers, compiled once per target (STYLE.md: keep rebuilds quick on 2 cores).
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
