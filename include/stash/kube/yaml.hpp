// YAML in and out, the way kubectl converts it: a YAML stream becomes JSON documents, resolving plain
// scalars as YAML 1.1 does (sigs.k8s.io/yaml over go-yaml v2), and JSON is written back as YAML that
// reads the same.
#pragma once

#include <stash/core/error.hpp>

#include <boost/json/value.hpp>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <regex>
#include <string>
#include <vector>

namespace stash::kube {

namespace detail {

/// The JSON value a plain (unquoted) YAML 1.1 scalar resolves to.
inline boost::json::value resolve_plain(std::string const& s) {
    static std::regex const int_re("[-+]?(0|[1-9][0-9_]*)"), hex_re("0x[0-9a-fA-F_]+"), oct_re("0[0-7_]+"),
        float_re("[-+]?(\\.[0-9]+|[0-9][0-9_]*(\\.[0-9_]*)?)([eE][-+]?[0-9]+)?");
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    for (char const* t : {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y"})
        if (s == t) return true;
    for (char const* f : {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N"})
        if (s == f) return false;
    std::string digits;
    for (char c : s)
        if (c != '_') digits += c;
    if (std::regex_match(s, int_re)) {
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(digits.data() + (digits[0] == '+'), digits.data() + digits.size(), v);
        if (ec == std::errc() && p == digits.data() + digits.size()) return v;
    } else if (std::regex_match(s, oct_re)) {  // YAML 1.1: 0644 is 420 (file modes in volumes)
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(digits.data() + 1, digits.data() + digits.size(), v, 8);
        if (ec == std::errc() && p == digits.data() + digits.size()) return v;
    } else if (std::regex_match(s, hex_re)) {
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(digits.data() + 2, digits.data() + digits.size(), v, 16);
        if (ec == std::errc() && p == digits.data() + digits.size()) return v;
    }
    if (std::regex_match(s, float_re)) {
        double d = 0;
        auto [p, ec] = std::from_chars(digits.data() + (digits[0] == '+'), digits.data() + digits.size(), d);
        if (ec == std::errc() && p == digits.data() + digits.size()) return d;
    }
    return boost::json::string(s);
}

inline result<boost::json::value> yaml_to_json(YAML::Node const& n, std::string const& what) {
    switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return boost::json::value(nullptr);
    case YAML::NodeType::Scalar:
        // Quoted or explicitly tagged !!str scalars stay strings.
        if (n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str") return boost::json::value(boost::json::string(n.Scalar()));
        return resolve_plain(n.Scalar());
    case YAML::NodeType::Sequence: {
        boost::json::array a;
        for (auto const& e : n) {
            auto v = yaml_to_json(e, what);
            if (!v) return v;
            a.push_back(std::move(*v));
        }
        return boost::json::value(std::move(a));
    }
    case YAML::NodeType::Map: {
        boost::json::object o;
        for (auto const& kv : n) {
            if (!kv.first.IsScalar())
                return make_error(errc::invalid_argument, what + ": line " + std::to_string(kv.first.Mark().line + 1) +
                                                              ": mapping keys must be scalars");
            auto v = yaml_to_json(kv.second, what);
            if (!v) return v;
            o[kv.first.Scalar()] = std::move(*v);
        }
        return boost::json::value(std::move(o));
    }
    }
    return boost::json::value(nullptr);
}

inline void emit(YAML::Emitter& out, boost::json::value const& v) {
    switch (v.kind()) {
    case boost::json::kind::null: out << YAML::Null; break;
    case boost::json::kind::bool_: out << (v.get_bool() ? "true" : "false"); break;
    case boost::json::kind::int64: out << v.get_int64(); break;
    case boost::json::kind::uint64: out << v.get_uint64(); break;
    case boost::json::kind::double_: out << v.get_double(); break;
    case boost::json::kind::string: {
        std::string s(v.get_string());
        // Quote what would not read back as this string.
        if (!resolve_plain(s).is_string()) out << YAML::DoubleQuoted << s;
        else out << s;
        break;
    }
    case boost::json::kind::array:
        out << YAML::BeginSeq;
        for (auto const& e : v.get_array()) emit(out, e);
        out << YAML::EndSeq;
        break;
    case boost::json::kind::object:
        out << YAML::BeginMap;
        for (auto const& [k, e] : v.get_object()) {
            out << YAML::Key << std::string(k) << YAML::Value;
            emit(out, e);
        }
        out << YAML::EndMap;
        break;
    }
}
}  // namespace detail

/** Parses a YAML stream (documents separated by `---`) into JSON documents; empty documents are
    skipped. `what` names the source in errors. Errors: `errc::invalid_argument` with the line and
    column of malformed YAML ("deploy/x.yaml: line 3, column 5: bad indentation …"). */
inline result<std::vector<boost::json::value>> parse_yaml(std::string const& text, std::string const& what) {
    std::vector<boost::json::value> out;
    try {
        for (auto const& doc : YAML::LoadAll(text)) {
            auto v = detail::yaml_to_json(doc, what);
            if (!v) return std::move(v).error();
            if (!v->is_null()) out.push_back(std::move(*v));
        }
    } catch (YAML::Exception const& e) {
        return make_error(errc::invalid_argument, what + ": line " + std::to_string(e.mark.line + 1) + ", column " +
                                                      std::to_string(e.mark.column + 1) + ": " + e.msg);
    }
    return out;
}

/// Writes a JSON document as block-style YAML (a document per call; join with "---\n").
inline std::string to_yaml(boost::json::value const& v) {
    YAML::Emitter out;
    out.SetIndent(2);
    detail::emit(out, v);
    return std::string(out.c_str()) + "\n";
}

}  // namespace stash::kube
