#include "stormnode/pacemaker/rejoin_decision.hpp"

#include <stormnode/common/strings.hpp>
#include <stormnode/pacemaker/bootstrap.hpp>

#include <charconv>
#include <sstream>

namespace stormnode::roles {
namespace {

// "Key:   value" -> value, for a line starting with key + ':'.
std::optional<std::string> field_value(const std::string& line, const std::string& key) {
    if (line.compare(0, key.size() + 1, key + ":") != 0) {
        return std::nullopt;
    }
    const auto begin = line.find_first_not_of(" \t", key.size() + 1);
    const auto end = line.find_last_not_of(" \t\r");
    return begin == std::string::npos ? std::string() : line.substr(begin, end - begin + 1);
}

// A libpq keyword value: quoted when it holds a space, a quote or a backslash.
std::string conninfo_value(const std::string& value) {
    if (!value.empty() && value.find_first_of(" '\\") == std::string::npos) {
        return value;
    }
    std::string quoted = "'";
    for (const char c : value) {
        if (c == '\'' || c == '\\') {
            quoted += '\\';
        }
        quoted += c;
    }
    return quoted + "'";
}

std::string describe(const PostgresControl& control) {
    return "'" + control.state + "', timeline " + std::to_string(control.timeline);
}

}  // namespace

std::optional<PostgresControl> parse_controldata(const std::string& output) {
    PostgresControl control;
    bool have_timeline = false;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) {
        if (const auto state = field_value(line, "Database cluster state")) {
            control.state = *state;
        } else if (const auto timeline = field_value(line, "Latest checkpoint's TimeLineID")) {
            const auto* end = timeline->data() + timeline->size();
            const auto [ptr, ec] = std::from_chars(timeline->data(), end, control.timeline);
            have_timeline = ec == std::errc() && ptr == end && !timeline->empty();
        }
    }
    if (control.state.empty() || !have_timeline) {
        return std::nullopt;
    }
    return control;
}

std::optional<std::string> left_as_is(const LocalPostgres& local) {
    if (!local.has_cluster) {
        return std::string("no PostgreSQL cluster in the datadir");
    }
    if (local.running) {
        return std::string("PostgreSQL runs on the datadir (Pacemaker's)");
    }
    if (local.standby_signal) {
        return std::string("a standby already (standby.signal)");
    }
    const auto& state = local.control.state;
    if (state == "shut down in recovery" || state == "in archive recovery") {
        return "left as a standby (" + describe(local.control) + ")";
    }
    // PAF promotes a standby, which opens a new timeline: a datadir still on the first one never
    // served as primary (the image's, or the configuring member's before its first start).
    if (state == "shut down" && local.control.timeline <= 1) {
        return "never promoted (" + describe(local.control) + "): PAF starts it as a standby";
    }
    return std::nullopt;
}

RejoinDecision decide_postgres_rejoin(const LocalPostgres& local, const std::vector<PeerPostgres>& peers) {
    RejoinDecision decision;
    if (auto reason = left_as_is(local)) {
        decision.reason = std::move(*reason);
        return decision;
    }
    std::vector<const PeerPostgres*> primaries;
    std::vector<std::string> primary_names;
    std::vector<std::string> no_answer;
    for (const auto& peer : peers) {
        if (peer.role == PeerRole::primary) {
            primaries.push_back(&peer);
            primary_names.push_back(peer.hostname);
        } else if (peer.role == PeerRole::unreachable) {
            no_answer.push_back(peer.hostname);
        }
    }
    const std::string unreachable = join(no_answer, ", ");
    const std::string left = "left as a primary (" + describe(local.control) + ")";
    if (primaries.empty()) {
        decision.reason = left + " and no other member serves as primary" +
                          (unreachable.empty() ? std::string() : " (no answer from " + unreachable + ")") +
                          ": a cold start, Pacemaker promotes";
        return decision;
    }
    if (primaries.size() > 1) {
        decision.action = RejoinAction::refuse;
        decision.reason = left + " while " + std::to_string(primaries.size()) +
                          " other members serve as primary (" + join(primary_names, ", ") +
                          "): no single primary to follow";
        return decision;
    }
    decision.action = RejoinAction::rejoin;
    decision.source = *primaries.front();
    decision.crash_recovery = local.control.state != "shut down";
    decision.reason =
        left + " while " + primaries.front()->hostname + " serves as primary: rejoining as its standby";
    return decision;
}

std::string rejoin_conninfo(const std::string& address, const std::string& passfile) {
    return "host=" + conninfo_value(address) + " port=5432 dbname=postgres user=" + kReplicationRole +
           " passfile=" + conninfo_value(passfile) + " connect_timeout=5";
}

}  // namespace stormnode::roles
