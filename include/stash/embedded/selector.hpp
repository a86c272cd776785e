// Label selectors (`labelSelector=`) and field selectors (`fieldSelector=`) as the API server parses
// them: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated (all must hold).
#pragma once

#include <stash/core/error.hpp>

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace stash::embedded {

class selector {
public:
    enum class op { eq, ne, in, notin, exists, not_exists };
    struct requirement {
        std::string key;
        op o;
        std::vector<std::string> values;
    };

    /// Parses a selector; `what` ("labelSelector") names it in errors. An empty text selects all.
    static result<selector> parse(std::string_view text, std::string const& what) {
        selector s;
        std::size_t i = 0;
        auto bad = [&](std::string const& m) {
            return make_error(errc::invalid_argument, what + " \"" + std::string(text) + "\": " + m);
        };
        auto skip = [&] {
            while (i < text.size() && text[i] == ' ') ++i;
        };
        auto word = [&] {
            skip();
            std::size_t const b = i;
            while (i < text.size() && text[i] != ',' && text[i] != '=' && text[i] != '!' && text[i] != ' ' &&
                   text[i] != '(' && text[i] != ')')
                ++i;
            return std::string(text.substr(b, i - b));
        };
        while (true) {
            skip();
            if (i >= text.size()) break;
            requirement r;
            if (text[i] == '!') {
                ++i;
                r.key = word();
                r.o = op::not_exists;
                if (r.key.empty()) return bad("expected a key after '!'");
            } else {
                r.key = word();
                if (r.key.empty()) return bad("expected a key");
                skip();
                if (i >= text.size() || text[i] == ',') {
                    r.o = op::exists;
                } else if (text.substr(i, 2) == "==" || text.substr(i, 2) == "!=") {
                    r.o = text[i] == '!' ? op::ne : op::eq;
                    i += 2;
                    r.values.push_back(word());
                } else if (text[i] == '=') {
                    ++i;
                    r.o = op::eq;
                    r.values.push_back(word());
                } else {
                    std::string const kw = word();
                    if (kw != "in" && kw != "notin") return bad("unknown operator \"" + kw + "\"");
                    r.o = kw == "in" ? op::in : op::notin;
                    skip();
                    if (i >= text.size() || text[i] != '(') return bad("expected '(' after " + kw);
                    ++i;
                    for (;;) {
                        r.values.push_back(word());
                        skip();
                        if (i < text.size() && text[i] == ',') {
                            ++i;
                            continue;
                        }
                        if (i < text.size() && text[i] == ')') {
                            ++i;
                            break;
                        }
                        return bad("expected ',' or ')'");
                    }
                }
            }
            s.reqs_.push_back(std::move(r));
            skip();
            if (i < text.size()) {
                if (text[i] != ',') return bad("expected ','");
                ++i;
            }
        }
        return s;
    }

    bool empty() const noexcept { return reqs_.empty(); }
    std::vector<requirement> const& requirements() const noexcept { return reqs_; }

    /// Whether a key/value set satisfies every requirement; `get(key)` returns a pointer to the value
    /// or null when the key is absent.
    template <class Get>
    bool matches(Get&& get) const {
        for (auto const& r : reqs_) {
            std::string const* v = get(r.key);
            bool const has = v != nullptr;
            bool const in = has && std::find(r.values.begin(), r.values.end(), *v) != r.values.end();
            switch (r.o) {
            case op::eq:
            case op::in:
                if (!in) return false;
                break;
            case op::ne:
            case op::notin:
                if (in) return false;
                break;
            case op::exists:
                if (!has) return false;
                break;
            case op::not_exists:
                if (has) return false;
                break;
            }
        }
        return true;
    }

    /// Against an object's `metadata.labels`.
    bool matches_labels(boost::json::object const& obj) const {
        if (reqs_.empty()) return true;
        boost::json::object const* labels = nullptr;
        if (auto const* m = obj.if_contains("metadata"); m && m->is_object())
            if (auto const* l = m->get_object().if_contains("labels"); l && l->is_object()) labels = &l->get_object();
        std::string tmp;
        return matches([&](std::string const& k) -> std::string const* {
            if (!labels) return nullptr;
            auto const* v = labels->if_contains(k);
            if (!v || !v->is_string()) return nullptr;
            tmp = std::string(v->get_string());
            return &tmp;
        });
    }

private:
    std::vector<requirement> reqs_;
};

}  // namespace stash::embedded
