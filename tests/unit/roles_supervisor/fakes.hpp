// Fakes for the supervisor's seams: a clock the test advances, a scripted systemd, scripted probes.
#pragma once

#include <stormnode/supervisor/clock.hpp>
#include <stormnode/supervisor/prober.hpp>
#include <stormnode/supervisor/systemd_manager.hpp>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace stormnode::roles::testing {

class FakeClock final : public Clock {
public:
    [[nodiscard]] time_point now() const override { return now_; }

    std::unique_ptr<Timer> after(duration d, std::function<void()> fn) override {
        auto entry = std::make_shared<Entry>(Entry{now_ + d, seq_++, std::move(fn), false});
        entries_.push_back(entry);
        return std::make_unique<Handle>(entry);
    }

    // Fires every timer due up to now + d, in time order, moving the clock with them.
    void advance(duration d) {
        const auto until = now_ + d;
        for (;;) {
            std::shared_ptr<Entry> next;
            for (const auto& e : entries_) {
                if (!e->cancelled && e->at <= until &&
                    (!next || e->at < next->at || (e->at == next->at && e->seq < next->seq))) {
                    next = e;
                }
            }
            if (!next) {
                break;
            }
            now_ = std::max(now_, next->at);
            next->cancelled = true;
            auto fn = std::move(next->fn);
            std::erase(entries_, next);
            fn();
        }
        now_ = until;
    }
    void run_due() { advance(duration(0)); }

    [[nodiscard]] std::size_t pending() const {
        std::size_t n = 0;
        for (const auto& e : entries_) {
            n += e->cancelled ? 0 : 1;
        }
        return n;
    }

private:
    struct Entry {
        time_point at;
        std::uint64_t seq;
        std::function<void()> fn;
        bool cancelled;
    };
    struct Handle final : Timer {
        explicit Handle(std::shared_ptr<Entry> e) : entry(std::move(e)) {}
        ~Handle() override { entry->cancelled = true; }
        std::shared_ptr<Entry> entry;
    };
    time_point now_{};
    std::uint64_t seq_ = 0;
    std::vector<std::shared_ptr<Entry>> entries_;
};

// Jobs finish when the test says so (or at once, with auto_complete); states are set by the test.
class FakeSystemd final : public SystemdManager {
public:
    std::vector<std::string> calls;           // "start a.service", "enable a.service,b.service", ...
    std::map<std::string, JobResult> script;  // result of the next job of a unit (default done)
    bool auto_complete = true;                // complete jobs (and set states) right away
    std::map<std::string, std::vector<JobCallback>> waiting;
    int invocation = 0;
    std::function<void(const std::string&)> on_job;  // called as a job is queued, before anything changes
    std::set<std::string> condition_fails;  // units whose Condition*= does not hold: start is skipped

    void start_unit(const std::string& unit, JobCallback done) override {
        job("start", unit, std::move(done));
    }
    void stop_unit(const std::string& unit, JobCallback done) override { job("stop", unit, std::move(done)); }
    void restart_unit(const std::string& unit, JobCallback done) override {
        job("restart", unit, std::move(done));
    }

    void enable_unit_files(const std::vector<std::string>& u, bool, Completion done) override {
        files("enable", u, done);
    }
    void disable_unit_files(const std::vector<std::string>& u, bool, Completion done) override {
        files("disable", u, done);
    }
    void mask_unit_files(const std::vector<std::string>& u, bool, Completion done) override {
        files("mask", u, done);
    }
    void unmask_unit_files(const std::vector<std::string>& u, bool, Completion done) override {
        files("unmask", u, done);
    }
    void reload(Completion done) override {
        calls.emplace_back("reload");
        done(std::nullopt);
    }

    void watch_unit(const std::string& unit) override { watched[unit] = true; }
    void unwatch_unit(const std::string& unit) override { watched.erase(unit); }
    void set_unit_listener(UnitListener l) override { listener = std::move(l); }
    [[nodiscard]] const UnitState* unit_state(const std::string& unit) const override {
        const auto it = states.find(unit);
        return it == states.end() ? nullptr : &it->second;
    }

    // Test side.
    void set_state(
        const std::string& unit, const std::string& active, const std::string& result = "success") {
        auto& s = states[unit];
        s.active_state = active;
        s.sub_state = active == "active" ? "running" : "dead";
        s.result = result;
        if (active == "active") {
            s.invocation_id = "inv" + std::to_string(++invocation);
            s.main_pid = 1000 + static_cast<std::uint32_t>(invocation);
        } else {
            s.main_pid = 0;
        }
        if (listener) {
            listener(unit, s);
        }
    }
    void complete(const std::string& unit, JobResult result = JobResult::done) {
        auto cbs = std::move(waiting[unit]);
        waiting.erase(unit);
        for (auto& cb : cbs) {
            cb(JobOutcome{result, result == JobResult::rejected ? "Unit " + unit + " not found." : ""});
        }
    }
    [[nodiscard]] int count(const std::string& call) const {
        int n = 0;
        for (const auto& c : calls) {
            n += c == call ? 1 : 0;
        }
        return n;
    }

    std::map<std::string, UnitState> states;
    std::map<std::string, bool> watched;
    UnitListener listener;

private:
    void job(const std::string& verb, const std::string& unit, JobCallback done) {
        if (on_job) {
            on_job(verb + " " + unit);
        }
        calls.push_back(verb + " " + unit);
        if (!auto_complete) {
            waiting[unit].push_back(std::move(done));
            return;
        }
        auto result = JobResult::done;
        if (const auto it = script.find(unit); it != script.end()) {
            result = it->second;
        }
        const auto* s = unit_state(unit);
        if (result == JobResult::done && verb != "stop" && condition_fails.contains(unit)) {
            // systemd: the job is "done", the unit stays inactive, ConditionResult=false.
            auto& st = states[unit];
            st.condition_result = false;
            st.condition_timestamp = 1700000000000000ULL + static_cast<std::uint64_t>(++invocation);
            set_state(unit, "inactive");
        } else if (result == JobResult::done) {
            if (verb == "stop") {
                set_state(unit, "inactive");
            } else if (verb == "restart" || s == nullptr || s->active_state != "active") {
                set_state(unit, "active");
            }
        } else if (result != JobResult::rejected) {
            set_state(unit, "failed", "exit-code");
        }
        done(JobOutcome{result, result == JobResult::rejected ? "Unit " + unit + " not found." : ""});
    }
    void files(const std::string& verb, const std::vector<std::string>& units, const Completion& done) {
        std::string joined;
        for (const auto& u : units) {
            joined += (joined.empty() ? "" : ",") + u;
        }
        calls.push_back(verb + " " + joined);
        done(std::nullopt);
    }
};

// Probe results by unit; results arrive through the clock (never inside probe()).
class FakeProber final : public Prober {
public:
    explicit FakeProber(FakeClock& clock) : clock_(clock) {}
    std::map<std::string, bool> healthy;  // by the check's host:port key (see key()); default: healthy
    std::map<std::string, std::string>
        failure;                             // what a failing check says, by key; default: connection refused
    std::map<std::string, int> exit_status;  // how a failing (exec) check exits, by key; default: none
    int probes = 0;

    static std::string key(const Check& check) { return std::to_string(check.port); }

    std::unique_ptr<Pending> probe(const Check& check, const UnitState&, Callback done) override {
        ++probes;
        const auto it = healthy.find(key(check));
        const bool ok = it == healthy.end() || it->second;
        const auto said = failure.find(key(check));
        const std::string detail = ok ? "" : said != failure.end() ? said->second : "connection refused";
        const auto exited = exit_status.find(key(check));
        const std::optional<int> status =
            ok || exited == exit_status.end() ? std::nullopt : std::optional<int>(exited->second);
        auto timer = clock_.after(Clock::duration(1), [done = std::move(done), ok, detail, status] {
            done(ProbeResult{ok, detail, status});
        });
        return std::make_unique<Running>(std::move(timer));
    }

private:
    struct Running final : Pending {
        explicit Running(std::unique_ptr<Clock::Timer> t) : timer(std::move(t)) {}
        std::unique_ptr<Clock::Timer> timer;
    };
    FakeClock& clock_;
};

}  // namespace stormnode::roles::testing
