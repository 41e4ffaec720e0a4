// The `dojo` command: the one CLI of OpenDojo. It parses, calls the library and prints; all errors end here and
// become exit codes: 0 success, 2 usage error (bad option, unknown name, malformed input), 1 anything else.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

#include "dojo/util/error.h"
#include "numerics_command.h"
#include "machine_command.h"
#include "plan_command.h"
#include "sim_command.h"
#include "train_command.h"
#include "compare_command.h"
#include "data_command.h"
#include "cluster_command.h"
#include "service_command.h"
#include "validate_command.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// The full command path of the subcommand being parsed, e.g. "dojo numerics encode", for the usage hint.
std::string command_path(const CLI::App& app) {
    std::string path = app.get_name();
    const CLI::App* current = &app;
    while (true) {
        const auto chosen = current->get_subcommands();
        if (chosen.empty()) {
            break;
        }
        current = chosen.front();
        path += " " + current->get_name();
    }
    return path;
}

// CLI11 reports "A subcommand is required" for `dojo numerics frobnicate`; this names the word it did not know and
// lists what it expected instead. Returns "" when every word before the first option is a known subcommand.
std::string unknown_subcommand(const CLI::App& app, int argc, char** argv) {
    const CLI::App* current = &app;
    std::string path = app.get_name();
    for (int i = 1; i < argc; ++i) {
        const std::string word = argv[i];
        if (word.empty() || word.front() == '-') {
            return "";
        }
        const auto children = current->get_subcommands([](const CLI::App*) { return true; });
        if (children.empty()) {
            return "";
        }
        const auto match = std::find_if(children.begin(), children.end(),
                                        [&](const CLI::App* child) { return child->get_name() == word; });
        if (match == children.end()) {
            std::string names;
            for (const CLI::App* child : children) {
                names += (names.empty() ? "" : ", ") + child->get_name();
            }
            return "unknown command '" + word + "' for '" + path + "'; expected one of " + names;
        }
        current = *match;
        path += " " + word;
    }
    return "";
}

// An empty argument ("--out ''", "--lr ''") is always a mistake (an unset shell variable, most often); CLI11 would
// take it as an empty path or a zero. Names the option it follows; "" when there is none.
std::string empty_argument(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string word = argv[i];
        const std::size_t eq = word.find('=');
        const bool empty_value = word.starts_with("--") && eq != std::string::npos && eq + 1 == word.size();
        if (word.empty() || empty_value) {
            const std::string option = empty_value ? word.substr(0, eq) : i > 1 ? std::string(argv[i - 1]) : "";
            return "argument " + std::to_string(i) + " is empty" +
                   (option.starts_with("-") ? " (the value of " + option + ")" : "") +
                   "; give it a value, or leave the option out for its default";
        }
    }
    return "";
}

}  // namespace

// A process the service started under mpirun (service/job_spec.h): it dies with mpirun, as mpirun dies with the
// service, so that no rank of a job trains on unseen after the server or the job was killed.
void die_with_parent_if_asked() {
    const char* asked = std::getenv("DOJO_DIE_WITH_PARENT");
    if (asked != nullptr && std::string(asked) == "1") {
        const pid_t parent = getppid();
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent || parent == 1) {
            _exit(137);  // the parent is gone already
        }
    }
}

int main(int argc, char** argv) {
    die_with_parent_if_asked();
    CLI::App app{"OpenDojo: train with Dojo's numerics, compile for Dojo machines, simulate them.", "dojo"};
    app.set_version_flag("--version", std::string("dojo ") + DOJO_VERSION);
    app.require_subcommand(1);
    dojo::cli::add_numerics_command(app);
    dojo::cli::add_train_command(app);
    dojo::cli::add_machine_command(app);
    dojo::cli::add_sim_command(app);
    dojo::cli::add_plan_command(app);
    dojo::cli::add_compare_command(app);
    dojo::cli::add_validate_command(app);
    dojo::cli::add_data_command(app);
    dojo::cli::add_service_commands(app);
    dojo::cli::add_cluster_command(app);

    if (const std::string empty = empty_argument(argc, argv); !empty.empty()) {
        std::cerr << "dojo: error: " << empty << "\n";
        return kExitUsage;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& success) {  // --help, --version
        return app.exit(success);
    } catch (const CLI::ParseError& error) {
        const std::string unknown = unknown_subcommand(app, argc, argv);
        std::cerr << "dojo: error: " << (unknown.empty() ? std::string(error.what()) : unknown) << "\nRun '"
                  << command_path(app) << " --help' for usage.\n";
        return kExitUsage;
    } catch (const dojo::UsageError& error) {
        std::cerr << "dojo: error: " << error.what() << "\n";
        return kExitUsage;
    } catch (const dojo::Error& error) {
        std::cerr << "dojo: error: " << error.what() << "\n";
        return kExitFailure;
    } catch (const std::exception& error) {
        std::cerr << "dojo: internal error: " << error.what() << "\nThis is a bug in OpenDojo; please report it.\n";
        return kExitFailure;
    }
    return kExitOk;
}
