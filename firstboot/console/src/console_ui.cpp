#include "stormnode/console/console_ui.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/spawn.hpp>

#include <newt.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace stormnode::firstboot {
namespace {

// newt keys a list item by a pointer: the index + 1 (never null).
void* key_of(std::size_t index) {
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(index + 1));
}  // NOLINT
std::size_t index_of(const void* key) {
    return reinterpret_cast<std::uintptr_t>(key) - 1;
}  // NOLINT

// The operator's root shell: it owns the terminal, so newt steps aside and the shell inherits tty1 and
// stays in the console's foreground process group (run() gives its child /dev/null for stdin and a group
// of its own, which a shell cannot use).
void run_shell() {
    newtSuspend();
    SpawnOptions shell;
    shell.argv = {"/bin/bash", "--login"};
    shell.in = Stdio::inherit();
    shell.group = ProcessGroup::inherit;
    try {
        const SpawnedProcess child = spawn(shell);
        int status = 0;
        while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
        }
    } catch (const std::exception&) {
        // No shell to offer (bash missing): back to the menu, as before.
    }
    newtResume();
}

struct Drawn {
    newtComponent form = nullptr;
    newtComponent list = nullptr;
    std::vector<newtComponent> entries;
    std::vector<std::pair<newtComponent, std::string>> buttons;
};

// The view's items: checkboxes when several may be marked (the role picker), else a list whose Enter
// submits the form. Keyed by index (key_of); the cursor on view.current.
newtComponent make_list(const View& view, int y, int rows, int width) {
    newtComponent list = nullptr;
    if (view.multiple) {
        list = newtCheckboxTree(0, y, rows, NEWT_FLAG_SCROLL);
        for (std::size_t i = 0; i < view.items.size(); ++i) {
            newtCheckboxTreeAddItem(
                list, view.items[i].c_str(), key_of(i), 0, NEWT_ARG_APPEND, NEWT_ARG_LAST);
            if (i < view.checked.size() && view.checked[i]) {
                newtCheckboxTreeSetEntryValue(list, key_of(i), NEWT_CHECKBOXTREE_SELECTED);
            }
        }
        newtCheckboxTreeSetWidth(list, width - 2);
        newtCheckboxTreeSetCurrent(list, key_of(std::min(view.current, view.items.size() - 1)));
    } else {
        list = newtListbox(0, y, rows, NEWT_FLAG_RETURNEXIT | NEWT_FLAG_SCROLL);
        newtListboxSetWidth(list, width - 2);
        for (std::size_t i = 0; i < view.items.size(); ++i) {
            newtListboxAppendEntry(list, view.items[i].c_str(), key_of(i));
        }
        newtListboxSetCurrent(list, static_cast<int>(std::min(view.current, view.items.size() - 1)));
    }
    return list;
}

Drawn draw(const View& view, int watch_fd) {
    int cols = 80;
    int rows = 24;
    newtGetScreenSize(&cols, &rows);
    const int width = std::max(40, cols - 4);
    const int height = std::max(12, rows - 4);
    newtOpenWindow(1, 1, width, height, view.title.c_str());

    Drawn d;
    d.form = newtForm(nullptr, nullptr, 0);
    const int list_rows = view.items.empty() ? 0 : std::min<int>(static_cast<int>(view.items.size()), 10);
    const int field_rows = static_cast<int>(view.fields.size());
    const int text_rows = std::max(3, height - list_rows - field_rows - 3);

    std::string text;
    for (const auto& line : view.text) {
        text += line + "\n";
    }
    newtComponent textbox = newtTextbox(0, 0, width - 1, text_rows, NEWT_FLAG_WRAP | NEWT_FLAG_SCROLL);
    newtTextboxSetText(textbox, text.c_str());
    newtFormAddComponent(d.form, textbox);
    int y = text_rows;

    if (!view.items.empty()) {
        d.list = make_list(view, y, list_rows, width);
        newtFormAddComponent(d.form, d.list);
        y += list_rows;
    }
    for (const auto& field : view.fields) {
        const int label_width = 10;
        newtFormAddComponent(d.form, newtLabel(0, y, field.label.c_str()));
        newtComponent entry = newtEntry(
            label_width,
            y,
            field.value.c_str(),
            width - label_width - 1,
            nullptr,
            NEWT_FLAG_RETURNEXIT | NEWT_FLAG_SCROLL | (field.secret ? NEWT_FLAG_PASSWORD : 0));
        newtFormAddComponent(d.form, entry);
        d.entries.push_back(entry);
        ++y;
    }
    auto buttons = view.buttons;
    if (buttons.empty() && view.items.empty() && view.fields.empty()) {
        buttons.emplace_back("Wait");  // a form needs something to focus
    }
    int x = 0;
    for (const auto& label : buttons) {
        newtComponent button = newtCompactButton(x, height - 1, label.c_str());
        newtFormAddComponent(d.form, button);
        d.buttons.emplace_back(button, label);
        x += static_cast<int>(label.size()) + 5;
    }
    newtFormAddHotKey(d.form, NEWT_KEY_F12);
    newtFormWatchFd(d.form, watch_fd, NEWT_FD_READ);
    if (d.list != nullptr) {
        newtFormSetCurrent(d.form, d.list);
    } else if (!d.entries.empty()) {
        newtFormSetCurrent(d.form, d.entries.front());
    } else if (!d.buttons.empty()) {
        newtFormSetCurrent(d.form, d.buttons.front().first);
    }
    return d;
}

Input read_input(const View& view, const Drawn& d, const newtExitStruct& exit) {
    Input input;
    input.button = view.buttons.empty() ? std::string() : view.buttons.front();
    if (exit.reason == newtExitStruct::NEWT_EXIT_COMPONENT) {
        for (const auto& [button, label] : d.buttons) {
            if (exit.u.co == button) {
                input.button = label;
            }
        }
    }
    if (d.list != nullptr) {
        if (view.multiple) {
            const void* current = newtCheckboxTreeGetCurrent(d.list);
            input.current = current != nullptr ? index_of(current) : 0;
            for (std::size_t i = 0; i < view.items.size(); ++i) {
                input.checked.push_back(
                    newtCheckboxTreeGetEntryValue(d.list, key_of(i)) == NEWT_CHECKBOXTREE_SELECTED);
            }
        } else {
            const void* current = newtListboxGetCurrent(d.list);
            input.current = current != nullptr ? index_of(current) : 0;
        }
    }
    for (const auto& entry : d.entries) {
        const char* value = newtEntryGetValue(entry);
        input.fields.emplace_back(value != nullptr ? value : "");
    }
    return input;
}

}  // namespace

ConsoleTerminal::ConsoleTerminal() {
    const char* term = std::getenv("TERM");
    if (isatty(STDIN_FILENO) == 0 || term == nullptr || *term == '\0') {
        throw Error(Errc::io, "no terminal to draw on (stdin must be a tty and TERM set)");
    }
    if (newtInit() != 0) {
        throw Error(Errc::io, std::string("cannot open the terminal (TERM=") + term + ")");
    }
}

ConsoleTerminal::~ConsoleTerminal() {
    newtFinished();
}

void run_console_ui(ConsoleFlow& flow, ConsoleWorker& worker) {
    newtCls();
    newtPushHelpLine(" Up/Down choose  Space marks  Tab next field  Enter or F12 goes on");
    std::size_t status_cursor = 0;
    std::optional<Input> draft;
    Screen draft_screen = Screen::status;
    while (true) {
        for (auto& event : worker.take_events()) {
            if (auto* node = std::get_if<NodeView>(&event)) {
                flow.update(std::move(*node));
            } else {
                flow.finished(std::get<CommandResult>(event));
                if (flow.take_shell()) {
                    run_shell();
                }
            }
        }
        if (worker.stopped()) {
            throw Error(Errc::dbus, worker.stop_reason());
        }
        if (auto command = flow.take_command()) {
            worker.post(std::move(*command));
        }
        View view = flow.view();
        if (view.screen == Screen::status) {
            view.current = std::min(status_cursor, view.items.empty() ? 0 : view.items.size() - 1);
        }
        if (draft && draft_screen == view.screen) {  // a redraw for events keeps what the operator typed
            view.current = draft->current;
            if (draft->checked.size() == view.checked.size()) {
                view.checked = draft->checked;
            }
            for (std::size_t i = 0; i < view.fields.size() && i < draft->fields.size(); ++i) {
                view.fields[i].value = draft->fields[i];
            }
        }
        draft.reset();
        Drawn d = draw(view, worker.event_fd());
        newtExitStruct exit{};
        newtFormRun(d.form, &exit);
        const Input input = read_input(view, d, exit);
        newtFormDestroy(d.form);
        newtPopWindow();
        if (view.screen == Screen::status) {
            status_cursor = input.current;
        }
        if (exit.reason == newtExitStruct::NEWT_EXIT_FDREADY ||
            exit.reason == newtExitStruct::NEWT_EXIT_ERROR ||
            exit.reason == newtExitStruct::NEWT_EXIT_TIMER) {
            draft = input;
            draft_screen = view.screen;
            continue;  // events: redraw with them
        }
        flow.submit(input);
    }
}

}  // namespace stormnode::firstboot
