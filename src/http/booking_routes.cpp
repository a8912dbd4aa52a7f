// The routes of CONTRACT.md's Events, Holds, Checkout and bookings, and Operations sections.
#include <boost/json.hpp>

#include "http/api.h"
#include "http/json_codec.h"
#include "http/json_response.h"
#include "http/problem.h"

namespace boxoffice::http {

namespace json = boost::json;

namespace {

template <class T, class ToJson>
HttpResponse respond(Result<T> result, int status, ToJson&& to_json_fn) {
  if (!result) return problem(result.error());
  return json_response(status, to_json_fn(*result));
}

/// Refuses bodies that do not claim to be JSON (a POST with a body must say what it is).
std::optional<HttpResponse> require_json(const HttpRequest& request) {
  const auto type = request.header("Content-Type");
  if (!type) return std::nullopt;  // curl -d without -H is common; the parser judges the body
  const auto semicolon = type->find(';');
  auto media = type->substr(0, semicolon);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (strncasecmp(media.data(), "application/json", media.size()) == 0 &&
      media.size() == std::string_view{"application/json"}.size()) {
    return std::nullopt;
  }
  return protocol_problem(415, "unsupported_media_type", "Unsupported media type",
                          "send the body as application/json");
}

}  // namespace

void Api::add_routes() {
  auto& r = router_;
  auto& service = bookings_;
  auto& waitlist = waitlist_;
  const auto& clock = clock_;

  // --- Events -------------------------------------------------------------------------------
  r.add(
      {"POST", "/v1/events", Access::admin, true, true, [&service, &clock](const RouteContext& c) {
         if (auto bad = require_json(c.request)) return *bad;
         auto event = event_from_json(c.request.body, clock.now());
         if (!event) return problem(event.error());
         return respond(service.create_event(c.caller, std::move(*event)), 201,
                        [](const Event& e) { return to_json(e); });
       }});
  r.add({"GET", "/v1/events", Access::anyone, true, false, [&service](const RouteContext&) {
           json::array events;
           for (const auto& e : service.list_events()) events.push_back(to_json(e));
           return json_response(200, json::object{{"events", std::move(events)}});
         }});
  r.add({"GET", "/v1/events/{event_id}", Access::anyone, false, false,
         [&service](const RouteContext& c) {
           return respond(service.get_event(c.param("event_id")), 200,
                          [](const Event& e) { return to_json(e); });
         }});
  r.add({"GET", "/v1/events/{event_id}/availability", Access::anyone, false, false,
         [&service](const RouteContext& c) {
           const auto& id = c.param("event_id");
           return respond(service.availability(id), 200, [&id](const auto& sections) {
             return availability_to_json(id, sections);
           });
         },
         [&service](const auto& params) {
           for (const auto& [name, value] : params) {
             if (name == "event_id") return service.availability_cached(value);
           }
           return false;
         }});
  r.add({"GET", "/v1/events/{event_id}/sections/{section_id}/seats", Access::anyone, false, false,
         [&service](const RouteContext& c) {
           return respond(service.seats(c.param("event_id"), c.param("section_id"),
                                        c.request.query_param("row")),
                          200, [](const auto& seats) { return seats_to_json(seats); });
         }});
  r.add({"GET", "/v1/events/{event_id}/stats", Access::admin, true, false,
         [&service, &waitlist](const RouteContext& c) {
           const auto& id = c.param("event_id");
           return respond(service.stats(c.caller, id), 200, [&](const EventStats& s) {
             return stats_to_json(s, waitlist.counts(id));
           });
         }});

  // --- Holds --------------------------------------------------------------------------------
  // A hold is the hot path of a flash sale: with Redis it also answers asynchronously.
  const auto hold_selection =
      [](const RouteContext& c) -> std::variant<HoldSelection, HttpResponse> {
    if (auto bad = require_json(c.request)) return *bad;
    auto selection = hold_selection_from_json(c.request.body);
    if (!selection) return problem(selection.error());
    return std::move(*selection);
  };
  const auto hold_answer = [](Result<Hold> hold, const std::string& event_id) {
    if (!hold && hold.error().code == Errc::sold_out) {
      return problem(hold.error(), {{"waitlist", "/v1/events/" + event_id + "/waitlist"}});
    }
    return respond(std::move(hold), 201, [](const Hold& h) { return to_json(h); });
  };
  Route create_hold{
      "POST",
      "/v1/events/{event_id}/holds",
      Access::buyer,
      false,
      true,
      [&service, hold_selection, hold_answer](const RouteContext& c) {
        auto selection = hold_selection(c);
        if (auto* refusal = std::get_if<HttpResponse>(&selection)) return *refusal;
        const auto& event_id = c.param("event_id");
        return hold_answer(
            service.create_hold(c.caller, event_id, std::get<HoldSelection>(selection)), event_id);
      }};
  create_hold.async_handler = [&service, hold_selection, hold_answer](const RouteContext& c,
                                                                      Respond respond) {
    auto selection = hold_selection(c);
    if (auto* refusal = std::get_if<HttpResponse>(&selection)) return respond(nullptr, *refusal);
    service.async_create_hold(
        c.caller, c.param("event_id"), std::get<HoldSelection>(selection),
        [hold_answer, event_id = c.param("event_id"), respond = std::move(respond)](
            std::exception_ptr error, Result<Hold> hold) {
          if (error) return respond(error, {});
          respond(nullptr, hold_answer(std::move(hold), event_id));
        });
  };
  r.add(std::move(create_hold));
  r.add({"GET", "/v1/holds/{hold_id}", Access::buyer, false, false,
         [&service](const RouteContext& c) {
           return respond(service.get_hold(c.caller, c.param("hold_id")), 200,
                          [](const Hold& h) { return to_json(h); });
         }});
  r.add({"DELETE", "/v1/holds/{hold_id}", Access::buyer, false, false,
         [&service](const RouteContext& c) {
           auto released = service.release_hold(c.caller, c.param("hold_id"));
           if (!released) return problem(released.error());
           return no_content();
         }});

  // --- Checkout and bookings ----------------------------------------------------------------
  r.add({"POST", "/v1/holds/{hold_id}/checkout", Access::buyer, true, true,
         [&service](const RouteContext& c) {
           if (auto bad = require_json(c.request)) return *bad;
           auto method = checkout_from_json(c.request.body);
           if (!method) return problem(method.error());
           return respond(service.checkout(c.caller, c.param("hold_id"), *method), 202,
                          [](const Booking& b) { return to_json(b); });
         }});
  r.add({"GET", "/v1/bookings/{booking_id}", Access::buyer, true, false,
         [&service](const RouteContext& c) {
           return respond(service.get_booking(c.caller, c.param("booking_id")), 200,
                          [](const Booking& b) { return to_json(b); });
         }});
  r.add({"GET", "/v1/bookings", Access::buyer, true, false, [&service](const RouteContext& c) {
           json::array bookings;
           for (const auto& b : service.list_bookings(c.caller)) bookings.push_back(to_json(b));
           return json_response(200, json::object{{"bookings", std::move(bookings)}});
         }});
  r.add({"POST", "/v1/bookings/{booking_id}/cancel", Access::buyer, true, false,
         [&service](const RouteContext& c) {
           return respond(service.cancel_booking(c.caller, c.param("booking_id")), 202,
                          [](const Booking& b) { return to_json(b); });
         }});

  // --- Waitlist ------------------------------------------------------------------------------
  r.add({"POST", "/v1/events/{event_id}/waitlist", Access::buyer, true, true,
         [&waitlist](const RouteContext& c) {
           if (auto bad = require_json(c.request)) return *bad;
           auto wanted = waitlist_join_from_json(c.request.body);
           if (!wanted) return problem(wanted.error());
           return respond(
               waitlist.join(c.caller, c.param("event_id"), wanted->section, wanted->quantity), 201,
               [](const WaitlistEntry& e) { return to_json(e); });
         }});
  r.add({"GET", "/v1/waitlist/{entry_id}", Access::buyer, true, false,
         [&waitlist](const RouteContext& c) {
           return respond(waitlist.get(c.caller, c.param("entry_id")), 200,
                          [](const WaitlistEntry& e) { return to_json(e); });
         }});
  r.add({"DELETE", "/v1/waitlist/{entry_id}", Access::buyer, true, false,
         [&waitlist](const RouteContext& c) {
           auto left = waitlist.leave(c.caller, c.param("entry_id"));
           if (!left) return problem(left.error());
           return no_content();
         }});

  // --- Operations ---------------------------------------------------------------------------
  r.add({"GET", "/healthz", Access::anyone, false, false, [](const RouteContext&) {
           return json_response(200, json::object{{"status", "ok"}});
         }});
  r.add({"GET", "/readyz", Access::anyone, true, false, [this](const RouteContext&) {
           json::object engines;
           std::string failing;
           for (const auto& check : options_.readiness) {
             bool ready = false;
             try {
               ready = check.ready();
             } catch (const std::exception&) {
               ready = false;
             }
             engines[check.name] = ready ? "ok" : "unavailable";
             if (!ready) failing += (failing.empty() ? "" : ", ") + check.name;
           }
           if (!failing.empty()) {
             auto response = protocol_problem(503, "not_ready", "Not ready",
                                              "engines not answering: " + failing);
             auto body = json::parse(response.body).as_object();
             body["engines"] = std::move(engines);
             response.body = json::serialize(body);
             return response;
           }
           return json_response(200,
                                json::object{{"status", "ready"}, {"engines", std::move(engines)}});
         }});
  r.add({"GET", "/metrics", Access::anyone, false, false, [this](const RouteContext&) {
           HttpResponse response;
           response.content_type = "text/plain; version=0.0.4";
           response.body = metrics_->render();
           return response;
         }});
}

}  // namespace boxoffice::http
