// pxe serve's HTTP server (cpp-httplib), on its own so that it can run without dnsmasq: the repo and
// artifacts served to a client on loopback in tests and benchmarks are the ones a rack gets.
//
// GET /repo/...          the OSTree repo (ServeOptions::repo): objects, deltas, summary, config
// GET /...               the artifacts directory of pxe build
// GET /boot/grub/<mac>.cfg, /boot/ipxe/<mac>.ipxe, /answers/<mac>.yaml, POST /report, GET /nodes
//                        per-MAC boot configs, answer files and the node table (pxe_serve.hpp)
#pragma once

#include "stormnode/pxe/pxe_serve.hpp"

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

namespace stormnode::iso {

// One file response (or per-MAC boot config): who fetched what, and how many bytes went out.
struct HttpTransfer {
    std::string client;       // the peer's address
    std::string path;         // "/squashfs.img", "/repo/deltas/..."
    std::uint64_t bytes = 0;  // body bytes sent; 0 when the client left before the end
    int status = 200;         // 404: no such file
};

class PxeHttpServer {
public:
    using ChangeHandler = std::function<void()>;
    using TransferHandler = std::function<void(const HttpTransfer&)>;

    // Both handlers are called from the server's worker threads: on_change after anything that
    // changed the table, on_transfer after every file and boot config request (none: not reported).
    PxeHttpServer(
        const ServeOptions& options,
        NodeTable& table,
        ChangeHandler on_change,
        TransferHandler on_transfer = {});
    PxeHttpServer(const PxeHttpServer&) = delete;
    PxeHttpServer& operator=(const PxeHttpServer&) = delete;
    PxeHttpServer(PxeHttpServer&&) = delete;
    PxeHttpServer& operator=(PxeHttpServer&&) = delete;
    ~PxeHttpServer();

    // Listens on the inventory's server address, port options.http_port (0: any free one), and serves
    // on a thread of its own. Returns the port. Error(io) when it cannot listen.
    int start();
    void stop();

private:
    void serve_file(
        const httplib::Request& req,
        httplib::Response& res,
        const std::filesystem::path& root,
        const std::string& rel,
        const std::string& shown);
    void transferred(HttpTransfer transfer);

    const ServeOptions& options_;
    NodeTable& table_;
    ChangeHandler on_change_;
    TransferHandler on_transfer_;
    httplib::Server server_;
    std::thread thread_;
};

}  // namespace stormnode::iso
