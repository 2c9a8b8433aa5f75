#include "stormnode/pxe/pxe_http.hpp"

#include <stormnode/catalog/node_file.hpp>
#include <stormnode/common/c_handle.hpp>
#include <stormnode/common/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <memory>

namespace stormnode::iso {
namespace fs = std::filesystem;

namespace {

// "/boot/grub/52:54:00:00:00:01.cfg" -> the MAC, when it is one
std::optional<std::string> mac_in(const std::string& name) {
    if (!roles::valid_mac(name)) {
        return std::nullopt;
    }
    return roles::normalize_mac(name);
}

// A file under root, never outside it; nullopt for anything else.
std::optional<fs::path> file_under(const fs::path& root, const std::string& relative) {
    if (relative.empty() || relative.find("..") != std::string::npos || relative.front() == '/') {
        return std::nullopt;
    }
    fs::path path = root / relative;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return std::nullopt;
    }
    return path;
}

}  // namespace

PxeHttpServer::PxeHttpServer(
    const ServeOptions& options, NodeTable& table, ChangeHandler on_change, TransferHandler on_transfer)
    : options_(options),
      table_(table),
      on_change_(std::move(on_change)),
      on_transfer_(std::move(on_transfer)) {
    const std::string server = options.inventory.network.server +
                               (options.http_port == 80 ? "" : ":" + std::to_string(options.http_port));
    server_.Get(
        R"(/boot/(grub|ipxe)/([^/]+)\.(cfg|ipxe))",
        [this, server](const httplib::Request& req, httplib::Response& res) {
            const auto mac = mac_in(req.matches[2]);
            if (!mac) {
                res.status = 404;
                return;
            }
            const InventoryNode* node = options_.inventory.find(*mac);
            const BootAction action = node != nullptr ? BootAction::install
                                      : options_.inventory.discovered == DiscoveredPolicy::live
                                          ? BootAction::live
                                          : BootAction::local;
            const BootParams params{server, *mac, {}};
            const bool grub = req.matches[1] == "grub";
            const std::string config =
                grub ? render_grub_entry(action, params) : render_ipxe_entry(action, params);
            res.set_content(config, "text/plain");
            table_.boot_config(*mac, action);
            on_change_();
            if (on_transfer_) {  // which boot loader asked, in the access log
                on_transfer_({req.remote_addr, req.path, config.size(), 200});
            }
        });
    server_.Get(R"(/answers/([^/]+)\.yaml)", [this](const httplib::Request& req, httplib::Response& res) {
        const auto mac = mac_in(req.matches[1]);
        const InventoryNode* node = mac ? options_.inventory.find(*mac) : nullptr;
        if (node == nullptr) {
            res.status = 404;
            res.set_content("no answer file for this MAC: it is not in the inventory\n", "text/plain");
            return;
        }
        res.set_content(render_answers(*node), "application/yaml");
        table_.answers_fetched(node->mac);
        on_change_();
    });
    server_.Post("/report", [this](const httplib::Request& req, httplib::Response& res) {
        const auto mac = req.get_param_value("mac");
        const auto state = req.get_param_value("state");
        if (!table_.report(mac, state, req.get_param_value("detail"))) {
            res.status = 400;
            res.set_content(
                "want mac=<MAC>&state=<seen|booting|installing|installed|healthy|failed>\n", "text/plain");
            return;
        }
        res.set_content("ok\n", "text/plain");
        on_change_();
    });
    server_.Get("/nodes", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(render_node_tsv(table_.snapshot()), "text/tab-separated-values");
    });
    server_.Get(R"(/repo/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
        if (!options_.repo) {
            res.status = 404;
            return;
        }
        serve_file(req, res, *options_.repo, req.matches[1], "/repo/" + req.matches[1].str());
    });
    server_.Get(R"(/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
        serve_file(req, res, options_.artifacts, req.matches[1], "/" + req.matches[1].str());
    });
}

PxeHttpServer::~PxeHttpServer() {
    stop();
}

int PxeHttpServer::start() {
    const auto& host = options_.inventory.network.server;
    const int port = options_.http_port == 0                          ? server_.bind_to_any_port(host)
                     : server_.bind_to_port(host, options_.http_port) ? options_.http_port
                                                                      : -1;
    if (port <= 0) {
        throw Error(
            Errc::io,
            "cannot listen on http://" + host + ":" + std::to_string(options_.http_port) +
                " (is the address on the interface, is the port free?)");
    }
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() does nothing to a server that is not running yet (httplib checks is_running), so a stop
    // right after start would leave the thread in accept(): wait for it, microseconds. httplib has no
    // event to wait on.
    while (!server_.is_running() && thread_.joinable()) {
        std::this_thread::yield();
    }
    return port;
}

void PxeHttpServer::stop() {
    server_.stop();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void PxeHttpServer::transferred(HttpTransfer transfer) {
    table_.http(transfer.client, transfer.path, transfer.bytes);
    on_change_();
    if (on_transfer_) {
        on_transfer_(transfer);
    }
}

// Streams the file (squashfs.img is hundreds of MB: never read whole into memory), counting bytes per
// client.
void PxeHttpServer::serve_file(
    const httplib::Request& req,
    httplib::Response& res,
    const fs::path& root,
    const std::string& rel,
    const std::string& shown) {
    const auto path = file_under(root, rel);
    if (!path) {
        res.status = 404;
        // A miss is part of the protocol (libostree asks for summary.sig, a scratch delta, ...): the
        // access log shows it, the node table does not.
        if (on_transfer_) {
            on_transfer_({req.remote_addr, shown, 0, 404});
        }
        return;
    }
    auto fd = std::make_shared<UniqueFd>(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (fd->get() < 0 || ::fstat(fd->get(), &st) != 0) {
        res.status = 403;
        return;
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    res.set_content_provider(
        size,
        "application/octet-stream",
        [fd](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
            std::array<char, 1 << 16> buffer{};
            const auto want = std::min(length, buffer.size());
            const auto n = ::pread(fd->get(), buffer.data(), want, static_cast<off_t>(offset));
            if (n <= 0) {
                return false;
            }
            return sink.write(buffer.data(), static_cast<std::size_t>(n));
        },
        [this, client = req.remote_addr, shown, size](bool success) {
            transferred({client, shown, success ? size : 0, 200});
        });
}

}  // namespace stormnode::iso
