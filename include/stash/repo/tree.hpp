// Tree blobs: a directory's sorted list of nodes (restic-format.md §7).
#pragma once

#include <stash/core/hex.hpp>
#include <stash/core/id.hpp>
#include <stash/core/json_writer.hpp>
#include <stash/core/time.hpp>
#include <stash/repo/detail/json_events.hpp>
#include <stash/repo/go_quote.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace stash::repo {

enum class node_type { file, dir, symlink, dev, chardev, fifo, socket };

inline char const* to_string(node_type t) noexcept {
    constexpr char const* names[] = {"file", "dir", "symlink", "dev", "chardev", "fifo", "socket"};
    return names[int(t)];
}

/// Go os.FileMode bits as restic stores them in `mode` (restic-format.md §7.4).
namespace go_mode {
inline constexpr std::uint32_t dir = 1u << 31, symlink = 1u << 27, device = 1u << 26, named_pipe = 1u << 25,
                               socket = 1u << 24, setuid = 1u << 23, setgid = 1u << 22, char_device = 1u << 21,
                               sticky = 1u << 20, perm = 0777;

/// Go FileMode from a POSIX st_mode.
inline std::uint32_t from_posix(unsigned m) noexcept {
    std::uint32_t g = m & perm;
    switch (m & 0170000) {
        case 0040000: g |= dir; break;
        case 0120000: g |= symlink; break;
        case 0060000: g |= device; break;
        case 0020000: g |= device | char_device; break;
        case 0010000: g |= named_pipe; break;
        case 0140000: g |= socket; break;
        default: break;
    }
    if (m & 04000) g |= setuid;
    if (m & 02000) g |= setgid;
    if (m & 01000) g |= sticky;
    return g;
}
/// Permission bits plus setuid/setgid/sticky at their POSIX positions.
inline unsigned to_posix_perm(std::uint32_t g) noexcept {
    unsigned m = g & perm;
    if (g & setuid) m |= 04000;
    if (g & setgid) m |= 02000;
    if (g & sticky) m |= 01000;
    return m;
}
}  // namespace go_mode

struct xattr {
    std::string name;
    bytes value;
    friend bool operator==(xattr const&, xattr const&) = default;
};

/// One entry of a tree: a file, directory, symlink, device, FIFO or socket with its metadata.
struct node {
    std::string name;  ///< raw bytes of the file name (quoted only in JSON)
    node_type type = node_type::file;
    std::uint32_t mode = 0;  ///< Go FileMode bits
    timestamp mtime = timestamp::zero(), atime = timestamp::zero(), ctime = timestamp::zero();
    std::uint32_t uid = 0, gid = 0;
    std::string user, group;
    std::uint64_t inode = 0, device_id = 0, size = 0, links = 0;
    std::string linktarget;
    std::vector<xattr> xattrs;
    std::uint64_t device = 0;  ///< st_rdev of block/char devices
    std::vector<id> content;   ///< files: data blob IDs in order
    std::optional<id> subtree; ///< dirs: tree blob ID
    std::string error;
    /// Field by field; timestamps compare as instants (their zone offsets may differ).
    friend bool operator==(node const&, node const&) = default;
};

/// Appends a node's JSON in restic's field order and omitempty rules.
inline void write_node(json_writer& w, node const& n) {
    w.begin_object();
    if (go_quote_is_identity(n.name)) w.field("name", n.name);
    else w.field("name", go_quote(n.name));
    w.field("type", to_string(n.type));
    if (n.mode) w.field("mode", n.mode);
    char t[rfc3339_max];
    w.field("mtime", std::string_view(t, format_rfc3339(n.mtime, t)));
    w.field("atime", std::string_view(t, format_rfc3339(n.atime, t)));
    w.field("ctime", std::string_view(t, format_rfc3339(n.ctime, t)));
    w.field("uid", n.uid).field("gid", n.gid);
    if (!n.user.empty()) w.field("user", n.user);
    if (!n.group.empty()) w.field("group", n.group);
    if (n.inode) w.field("inode", n.inode);
    if (n.device_id) w.field("device_id", n.device_id);
    if (n.size) w.field("size", n.size);
    if (n.links) w.field("links", n.links);
    if (!n.linktarget.empty()) w.field("linktarget", n.linktarget);
    if (!n.xattrs.empty()) {
        w.key("extended_attributes").begin_array();
        for (auto const& x : n.xattrs) w.begin_object().field("name", x.name).field("value", to_base64(x.value)).end_object();
        w.end_array();
    }
    if (n.device) w.field("device", n.device);
    w.key("content");
    if (n.type == node_type::file) {
        w.begin_array();
        for (auto const& c : n.content) w.hex(c.bytes);
        w.end_array();
    } else {
        w.null();
    }
    if (n.subtree) w.key("subtree").hex(n.subtree->bytes);
    if (!n.error.empty()) w.field("error", n.error);
    w.end_object();
}

/// The tree blob plaintext: `{"nodes":[…]}\n` with nodes sorted by name (callers sort).
inline std::string tree_json(std::vector<node> const& nodes) {
    std::string s;
    s.reserve(nodes.size() * 384 + 16);
    json_writer w(s);
    w.begin_object().key("nodes").begin_array();
    for (auto const& n : nodes) write_node(w, n);
    w.end_array().end_object();
    s += '\n';
    return s;
}

namespace detail {

// Reads tree JSON as it streams by (see read_json_events) straight into nodes: no DOM.
struct tree_visitor : json_visitor_base {
    enum role { other, top, nodes, node_object, xattrs, xattr_object, content };

    std::vector<node>& out;
    std::vector<role> stack;
    node cur;
    bool saw_name = false, saw_type = false, saw_xattr_name = false;
    xattr x;

    static bool is_scalar_field(std::string_view k) {
        static constexpr std::string_view names[] = {"name", "type", "mode", "mtime", "atime", "ctime", "uid", "gid",
                                                     "user", "group", "inode", "device_id", "size", "links",
                                                     "linktarget", "device", "subtree", "error"};
        return std::find(std::begin(names), std::end(names), k) != std::end(names);
    }

    bool begin(bool object, std::string_view key) {
        role const parent = stack.empty() ? other : stack.back();
        role r = other;
        if (stack.empty()) {
            if (!object) return fail("expected a JSON object");
            r = top;
        } else if (parent == top && key == "nodes") {
            if (object) return fail("\"nodes\" must be an array");
            r = nodes;
        } else if (parent == nodes) {
            if (!object) return fail("node is not an object");
            r = node_object, cur = node{}, saw_name = saw_type = false;
        } else if (parent == node_object && key == "extended_attributes") {
            if (object) return wrong(key, "an array");
            r = xattrs;
        } else if (parent == node_object && key == "content") {
            if (object) return wrong(key, "an array of IDs");
            r = content;
        } else if (parent == node_object && is_scalar_field(key)) {
            return wrong(key, "a scalar");
        } else if (parent == xattrs) {
            if (!object) return wrong("extended_attributes", "an array of objects");
            r = xattr_object, x = xattr{}, saw_xattr_name = false;
        } else if (parent == content) {
            return wrong("content", "an array of IDs");
        } else if (parent == xattr_object && (key == "name" || key == "value")) {
            return wrong("extended_attributes", "objects of strings");
        }
        stack.push_back(r);
        return true;
    }

    bool end(bool) {
        role const r = stack.back();
        stack.pop_back();
        if (r == node_object) {
            if (!saw_name) return fail("field \"name\" is missing");
            if (!saw_type) return fail("field \"type\" is missing");
            out.push_back(std::move(cur));
        } else if (r == xattr_object) {
            if (!saw_xattr_name) return fail("field \"name\" is missing");
            cur.xattrs.push_back(std::move(x));
        }
        return true;
    }

    bool scalar(std::string_view key, json_scalar const& v) {
        role const r = stack.empty() ? other : stack.back();
        bool const null = v.kind == json_scalar::null;
        switch (r) {
            case top:
                if (key == "nodes" && !null) return fail("\"nodes\" must be an array");
                return true;
            case nodes: return fail("node is not an object");
            case xattrs: return wrong("extended_attributes", "an array of objects");
            case content: {
                id i;
                if (v.kind != json_scalar::string || !from_hex(v.str, i.bytes)) return wrong("content", "an array of IDs");
                cur.content.push_back(i);
                return true;
            }
            case xattr_object:
                if (null) return true;
                if (key == "name") {
                    if (v.kind != json_scalar::string) return wrong(key, "a string");
                    x.name = v.str, saw_xattr_name = true;
                } else if (key == "value") {
                    auto b = v.kind == json_scalar::string ? from_base64(v.str) : std::nullopt;
                    if (!b) return wrong("extended_attributes", "base64 values");
                    x.value = std::move(*b);
                }
                return true;
            case node_object: return field(key, v);
            default: return true;
        }
    }

    bool field(std::string_view key, json_scalar const& v) {
        bool const null = v.kind == json_scalar::null;
        auto str = [&](std::string& to) {
            if (null) return true;
            if (v.kind != json_scalar::string) return wrong(key, "a string");
            to = v.str;
            return true;
        };
        auto num = [&](auto& to) {
            if (null) return true;
            if (v.kind != json_scalar::number || !v.u64) return wrong(key, "a non-negative integer");
            to = static_cast<std::remove_reference_t<decltype(to)>>(*v.u64);
            return true;
        };
        auto time = [&](timestamp& to) {
            if (null) return true;
            if (v.kind != json_scalar::string) return wrong(key, "a string");
            if (v.str.empty()) return true;
            auto t = parse_rfc3339(v.str);
            if (!t) return wrong(key, "an RFC 3339 time");
            to = *t;
            return true;
        };
        if (key == "name") {
            if (null) return true;
            if (v.kind != json_scalar::string) return wrong(key, "a string");
            auto unq = go_unquote(v.str);
            if (!unq) return fail(unq.error().message);
            cur.name = std::move(*unq), saw_name = true;
            return true;
        }
        if (key == "type") {
            if (null) return true;
            static constexpr std::string_view names[] = {"file", "dir", "symlink", "dev", "chardev", "fifo", "socket"};
            auto it = v.kind == json_scalar::string ? std::find(std::begin(names), std::end(names), v.str) : std::end(names);
            if (it == std::end(names)) return wrong(key, "a known node type");
            cur.type = node_type(it - std::begin(names)), saw_type = true;
            return true;
        }
        if (key == "content") {
            if (!null) return wrong(key, "an array of IDs");
            return true;
        }
        if (key == "subtree") {
            if (null) return true;
            if (v.kind != json_scalar::string) return wrong(key, "a string");
            if (v.str.empty()) return true;
            id i;
            if (!from_hex(v.str, i.bytes)) return wrong(key, "a 64-digit hex ID");
            cur.subtree = i;
            return true;
        }
        if (key == "extended_attributes") {
            if (!null) return wrong(key, "an array");
            return true;
        }
        if (key == "mode") return num(cur.mode);
        if (key == "mtime") return time(cur.mtime);
        if (key == "atime") return time(cur.atime);
        if (key == "ctime") return time(cur.ctime);
        if (key == "uid") return num(cur.uid);
        if (key == "gid") return num(cur.gid);
        if (key == "user") return str(cur.user);
        if (key == "group") return str(cur.group);
        if (key == "inode") return num(cur.inode);
        if (key == "device_id") return num(cur.device_id);
        if (key == "size") return num(cur.size);
        if (key == "links") return num(cur.links);
        if (key == "linktarget") return str(cur.linktarget);
        if (key == "device") return num(cur.device);
        if (key == "error") return str(cur.error);
        return true;  // fields of later formats are skipped
    }
};

}  // namespace detail

/// Parses a tree blob; `what` names it ("tree 3f2a…"). Nodes keep their stored order. Errors name the
/// tree and the field.
inline result<std::vector<node>> parse_tree(std::string_view text, std::string const& what) {
    std::vector<node> out;
    detail::tree_visitor v{{what, {}}, out};
    STASH_TRYV(detail::read_json_events(text, v, what));
    return out;
}

}  // namespace stash::repo
