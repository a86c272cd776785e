// Tree blobs: a directory's sorted list of nodes (restic-format.md §7).
#pragma once

#include <stash/core/json_writer.hpp>
#include <stash/repo/go_quote.hpp>
#include <stash/repo/json.hpp>

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
    w.begin_object().field("name", go_quote(n.name)).field("type", to_string(n.type));
    if (n.mode) w.field("mode", n.mode);
    w.field("mtime", format_rfc3339(n.mtime)).field("atime", format_rfc3339(n.atime)).field("ctime", format_rfc3339(n.ctime));
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
        for (auto const& c : n.content) w.value(c.str());
        w.end_array();
    } else {
        w.null();
    }
    if (n.subtree) w.field("subtree", n.subtree->str());
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

inline result<node> parse_node(boost::json::object const& o, std::string const& what) {
    json_reader r(o, what);
    node n;
    auto name = r.str("name", true);
    if (!name) return std::move(name).error();
    auto unq = go_unquote(*name);
    if (!unq) return make_error(errc::corrupt, what + ": " + unq.error().message);
    n.name = std::move(*unq);
    auto type = r.str("type", true);
    if (!type) return std::move(type).error();
    static constexpr std::string_view names[] = {"file", "dir", "symlink", "dev", "chardev", "fifo", "socket"};
    auto it = std::find(std::begin(names), std::end(names), *type);
    if (it == std::end(names)) return r.wrong("type", "a known node type");
    n.type = node_type(it - std::begin(names));
    auto mode = r.u64("mode");
    auto mt = r.time("mtime"), at = r.time("atime"), ct = r.time("ctime");
    auto uid = r.u64("uid"), gid = r.u64("gid"), ino = r.u64("inode"), dev = r.u64("device_id"), size = r.u64("size"),
         links = r.u64("links"), device = r.u64("device");
    for (auto* e : {&mode, &uid, &gid, &ino, &dev, &size, &links, &device})
        if (!*e) return std::move(*e).error();
    for (auto* e : {&mt, &at, &ct})
        if (!*e) return std::move(*e).error();
    n.mode = std::uint32_t(*mode), n.mtime = *mt, n.atime = *at, n.ctime = *ct;
    n.uid = std::uint32_t(*uid), n.gid = std::uint32_t(*gid), n.inode = *ino, n.device_id = *dev, n.size = *size;
    n.links = *links, n.device = *device;
    auto user = r.str("user"), group = r.str("group"), lt = r.str("linktarget"), err = r.str("error");
    for (auto* e : {&user, &group, &lt, &err})
        if (!*e) return std::move(*e).error();
    n.user = *user, n.group = *group, n.linktarget = *lt, n.error = *err;
    if (auto const* x = r.find("extended_attributes")) {
        if (!x->is_array()) return r.wrong("extended_attributes", "an array");
        for (auto const& xv : x->get_array()) {
            if (!xv.is_object()) return r.wrong("extended_attributes", "an array of objects");
            json_reader xr(xv.get_object(), what);
            auto xn = xr.str("name", true), xval = xr.str("value");
            if (!xn) return std::move(xn).error();
            if (!xval) return std::move(xval).error();
            auto b = from_base64(*xval);
            if (!b) return r.wrong("extended_attributes", "base64 values");
            n.xattrs.push_back({*xn, std::move(*b)});
        }
    }
    if (auto const* c = r.find("content")) {
        if (!c->is_array()) return r.wrong("content", "an array of IDs");
        n.content.reserve(c->get_array().size());
        for (auto const& cv : c->get_array()) {
            auto i = cv.is_string() ? id::parse(cv.get_string()) : result<id>(make_error(errc::corrupt, ""));
            if (!i) return r.wrong("content", "an array of IDs");
            n.content.push_back(*i);
        }
    }
    auto sub = r.id("subtree");
    if (!sub) return std::move(sub).error();
    if (!sub->is_null()) n.subtree = *sub;
    return n;
}

/// Parses a tree blob; `what` names it ("tree 3f2a…"). Nodes keep their stored order.
inline result<std::vector<node>> parse_tree(std::string_view text, std::string const& what) {
    auto o = parse_object(text, what);
    if (!o) return std::move(o).error();
    auto const* nodes = o->if_contains("nodes");
    std::vector<node> out;
    if (!nodes || nodes->is_null()) return out;
    if (!nodes->is_array()) return make_error(errc::corrupt, what + ": \"nodes\" must be an array");
    out.reserve(nodes->get_array().size());
    for (auto const& nv : nodes->get_array()) {
        if (!nv.is_object()) return make_error(errc::corrupt, what + ": node is not an object");
        auto n = parse_node(nv.get_object(), what);
        if (!n) return std::move(n).error();
        out.push_back(std::move(*n));
    }
    return out;
}

}  // namespace stash::repo
