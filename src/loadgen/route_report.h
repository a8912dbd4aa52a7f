#pragma once
// The parts of a load report that every kind of run shares: the per-route latency table, status
// counts and the timeline, as Markdown for people and JSON (or a gnuplot data file) for machines.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loadgen/recorder.h"

namespace boxoffice::loadgen {

/// "201 ×1,204, 409 ×17" ("none" for requests without a response).
std::string statuses_text(const std::map<int, uint64_t>& statuses);
/// "201" — a status code as a JSON key ("none" for no response).
std::string status_key(int status);
boost::json::object latency_json(const LatencySummary& latency);

/// The Markdown table of every route class (requests, p50 … max in ms, statuses), then one line
/// with the status codes over every route.
std::string routes_markdown(const std::vector<RouteSummary>& routes);
boost::json::array routes_json(const std::vector<RouteSummary>& routes);
/// Status counts summed over every route class.
std::map<int, uint64_t> all_statuses(const std::vector<RouteSummary>& routes);

/// [{"second", "requests", "ok": {route: n}, "p50_ms", "p99_ms", ...}, ...]
boost::json::array timeline_json(const std::vector<SecondSummary>& timeline);
/// A gnuplot data file: one line per second — second, requests, 2xx answers of `route`, p50 ms,
/// p99 ms — under a comment line naming the columns.
std::string timeline_data(const std::vector<SecondSummary>& timeline, const std::string& route);

}  // namespace boxoffice::loadgen
