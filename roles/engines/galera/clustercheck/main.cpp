// storm-clustercheck: a Galera node's health for others, from the engine's own status variables.
//   serve --listen ADDR [--port 9200]  HTTP for HAProxy's httpchk: 200 Synced in a Primary component, else
//   503 primary                            exit 1 (reason on stderr) only when the server says it is outside
//   a
//                                      Primary component; 0 otherwise, also when it cannot be asked (the
//                                      other checks of mariadb.service see to a server that does not answer)
#include <stormnode/common/error.hpp>
#include <stormnode/galera/clustercheck.hpp>

#include <CLI/CLI.hpp>
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;
namespace roles = stormnode::roles;

namespace {

constexpr auto kQueryTimeout = 5s;

int serve(const std::string& address, int port) {
    httplib::Server server;
    // One request at a time: each runs a mariadb client, and HAProxy checks every few seconds.
    server.new_task_queue = [] {
        return new httplib::ThreadPool(1);
    };
    server.Get(R"(/.*)", [](const httplib::Request&, httplib::Response& res) {
        roles::ClustercheckAnswer answer;
        try {
            answer = roles::clustercheck_answer(roles::read_galera_status(kQueryTimeout));
        } catch (const std::exception& e) {
            answer = {503, stormnode::describe(e) + "\n"};
        }
        res.status = answer.status;
        res.set_content(answer.body, "text/plain");
    });
    if (!server.bind_to_port(address, port)) {
        std::fprintf(stderr, "storm-clustercheck: cannot listen on %s:%d\n", address.c_str(), port);
        return 1;
    }
    std::fprintf(stderr, "storm-clustercheck: listening on %s:%d\n", address.c_str(), port);
    return server.listen_after_bind() ? 0 : 1;
}

int primary() {
    roles::GaleraStatus status;
    try {
        status = roles::read_galera_status(kQueryTimeout);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "not asked: %s\n", stormnode::describe(e).c_str());
        return 0;
    }
    const auto reason = roles::non_primary_reason(status);
    if (reason.empty()) {
        return 0;
    }
    std::fprintf(stderr, "%s\n", reason.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Galera node health from wsrep_cluster_status and wsrep_local_state_comment"};
    app.require_subcommand(1);
    std::string address;
    int port = 9200;
    auto* serve_cmd = app.add_subcommand(
        "serve", "HTTP endpoint for HAProxy: 200 when Synced in a Primary component, else 503");
    serve_cmd->add_option("--listen", address, "address to listen on")->required();
    serve_cmd->add_option("--port", port, "TCP port")->check(CLI::Range(1, 65535));
    auto* primary_cmd =
        app.add_subcommand("primary", "fail only when the server is outside a Primary component");
    CLI11_PARSE(app, argc, argv);
    try {
        if (serve_cmd->parsed()) {
            return serve(address, port);
        }
        if (primary_cmd->parsed()) {
            return primary();
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "storm-clustercheck: %s\n", stormnode::describe(e).c_str());
        return 1;
    }
    return 2;
}
