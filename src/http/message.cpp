#include "http/message.h"

#include <strings.h>

#include <boost/beast/http/status.hpp>

namespace boxoffice::http {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode_component(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out.push_back(' ');
    } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
               hex_value(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

bool same_field_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string_view> find_field(const HeaderFields& fields, std::string_view name) {
  for (const auto& [key, value] : fields) {
    if (same_field_name(key, name)) return std::string_view{value};
  }
  return std::nullopt;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  const auto append_text = [&out](std::string_view text) {
    for (const char c : text) out.push_back(c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
  };
  append_text(name);
  out += ": ";
  append_text(value);
  out += "\r\n";
}

std::optional<std::string_view> HttpRequest::header(std::string_view name) const {
  return find_field(headers, name);
}

std::optional<std::string> HttpRequest::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const auto pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    const auto key = pair.substr(0, eq);
    if (decode_component(key) == name) {
      return eq == std::string_view::npos ? std::string{} : decode_component(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string response_head(const HttpResponse& response, std::string_view request_id,
                          bool keep_alive) {
  std::string out;
  out.reserve(160 + response.content_type.size() + request_id.size());
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out +=
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(response.status));
  out += "\r\n";
  append_field(out, "Server", "boxoffice");
  if (!response.content_type.empty()) append_field(out, "Content-Type", response.content_type);
  append_field(out, "X-Request-Id", request_id);
  const auto& fields = response.headers;
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string_view name = fields[i].first;
    bool own = false;
    for (const char* written : {"Server", "Content-Type", "X-Request-Id", "Content-Length",
                                "Connection", "Transfer-Encoding"}) {
      own = own || same_field_name(name, written);
    }
    bool replaced = false;
    for (size_t j = i + 1; j < fields.size() && !replaced; ++j) {
      replaced = same_field_name(name, fields[j].first);
    }
    if (!own && !replaced) append_field(out, name, fields[i].second);
  }
  append_field(out, "Content-Length", std::to_string(response.body.size()));
  if (!keep_alive) append_field(out, "Connection", "close");
  out += "\r\n";
  return out;
}

}  // namespace boxoffice::http
