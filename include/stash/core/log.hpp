// Structured logs: one line per record, with a time, a level, a message and key/value fields, as
// logfmt text (`time=… level=info msg="started leading" lease=kube-system/stash-operator`) or as
// one JSON object per line (for log collectors). Thread-safe; a record is written with one call.
#pragma once

#include <stash/core/time.hpp>

#include <boost/json.hpp>

#include <functional>
#include <initializer_list>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace stash {

enum class log_level { debug, info, warn, error };
enum class log_format { text, json };

constexpr char const* to_string(log_level l) noexcept {
    switch (l) {
        case log_level::debug: return "debug";
        case log_level::info: return "info";
        case log_level::warn: return "warn";
        case log_level::error: return "error";
    }
    return "info";
}

/// Parses "debug", "info", "warn" or "error"; errc::invalid_argument names the bad value.
inline result<log_level> parse_log_level(std::string_view s) {
    for (auto l : {log_level::debug, log_level::info, log_level::warn, log_level::error})
        if (s == to_string(l)) return l;
    return make_error(errc::invalid_argument, "log level \"" + std::string(s) + "\": expected debug, info, warn or error");
}

/// One key/value pair of a record.
struct log_field {
    std::string key, value;
    log_field(std::string_view k, std::string_view v) : key(k), value(v) {}
    log_field(std::string_view k, char const* v) : key(k), value(v) {}
    template <class N>
        requires std::is_arithmetic_v<N>
    log_field(std::string_view k, N v) : key(k), value(std::to_string(v)) {}
};

/** A logger writes records at or above its level to a sink (stderr by default). `with` makes a
    child that adds fields to every record (the controller's name, say) and shares the sink, the
    level and the lock. Cheap to copy. */
class logger {
public:
    using sink = std::function<void(std::string_view line)>;  ///< gets each line, newline included

    explicit logger(log_level level = log_level::info, log_format format = log_format::text, sink out = {})
        : shared_(std::make_shared<state>()) {
        shared_->level = level;
        shared_->format = format;
        shared_->out = out ? std::move(out) : sink([](std::string_view l) { std::cerr << l << std::flush; });
    }

    logger with(std::initializer_list<log_field> fields) const {
        logger l = *this;
        l.fields_.insert(l.fields_.end(), fields.begin(), fields.end());
        return l;
    }
    bool enabled(log_level l) const noexcept { return l >= shared_->level; }

    void log(log_level l, std::string_view msg, std::initializer_list<log_field> fields = {}) const {
        if (!enabled(l)) return;
        std::string line = shared_->format == log_format::json ? json_line(l, msg, fields) : text_line(l, msg, fields);
        std::lock_guard lk(shared_->mu);
        shared_->out(line);
    }
    void debug(std::string_view m, std::initializer_list<log_field> f = {}) const { log(log_level::debug, m, f); }
    void info(std::string_view m, std::initializer_list<log_field> f = {}) const { log(log_level::info, m, f); }
    void warn(std::string_view m, std::initializer_list<log_field> f = {}) const { log(log_level::warn, m, f); }
    void error(std::string_view m, std::initializer_list<log_field> f = {}) const { log(log_level::error, m, f); }

private:
    struct state {
        log_level level;
        log_format format;
        sink out;
        std::mutex mu;
    };

    // logfmt: bare values when they are plain words, else Go-style double-quoted.
    static void append_value(std::string& s, std::string_view v) {
        bool plain = !v.empty();
        for (char c : v)
            if (c <= ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f) plain = false;
        if (plain) {
            s += v;
            return;
        }
        s += '"';
        for (char c : v) {
            if (c == '"' || c == '\\') s += '\\', s += c;
            else if (c == '\n') s += "\\n";
            else if (c == '\t') s += "\\t";
            else s += c;
        }
        s += '"';
    }
    std::string text_line(log_level l, std::string_view msg, std::initializer_list<log_field> fields) const {
        std::string s = "time=" + format_rfc3339(timestamp::now()) + " level=" + to_string(l) + " msg=";
        append_value(s, msg);
        auto add = [&](log_field const& f) {
            s += ' ';
            s += f.key;
            s += '=';
            append_value(s, f.value);
        };
        for (auto const& f : fields_) add(f);
        for (auto const& f : fields) add(f);
        return s += '\n';
    }
    std::string json_line(log_level l, std::string_view msg, std::initializer_list<log_field> fields) const {
        boost::json::object o{{"time", format_rfc3339(timestamp::now())}, {"level", to_string(l)}, {"msg", msg}};
        for (auto const& f : fields_) o[f.key] = f.value;
        for (auto const& f : fields) o[f.key] = f.value;
        return boost::json::serialize(o) + '\n';
    }

    std::shared_ptr<state> shared_;
    std::vector<log_field> fields_;
};

}  // namespace stash
