// XML answers of the S3 and Azure drivers: listing pages and error documents.
#pragma once

#include <stash/concepts/backend.hpp>
#include <stash/policies/net/http.hpp>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <sstream>

namespace stash::policies::backend::detail {

/// The body as an XML tree; `errc::io` with the parser's message when it is not XML (an empty
/// HEAD answer, an HTML page).
inline result<boost::property_tree::ptree> parse_xml(std::string const& text) {
    try {
        boost::property_tree::ptree tree;
        std::istringstream in(text);
        boost::property_tree::read_xml(in, tree);
        return tree;
    } catch (std::exception const& e) {
        return make_error(errc::io, e.what());
    }
}

/// A listing page of files of type `t`; `errc::io` naming `where` when the answer is not XML.
inline result<boost::property_tree::ptree> listing_xml(net::http_response const& r, std::string const& where, file_type t) {
    auto tree = parse_xml(r.body_text());
    if (!tree) return make_error(errc::io, where + ": list " + dir_name(t) + ": the answer is not XML: " + tree.error().what());
    return tree;
}

}  // namespace stash::policies::backend::detail
