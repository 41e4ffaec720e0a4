// The `dojo` command: the one CLI of OpenDojo. It parses, calls the library and prints; all errors end here and
// become exit codes: 0 success, 2 usage error (bad option, unknown name, malformed input), 1 anything else.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>

#include "dojo/util/error.h"
#include "numerics_command.h"

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

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"OpenDojo: train with Dojo's numerics, compile for Dojo machines, simulate them.", "dojo"};
    app.set_version_flag("--version", std::string("dojo ") + DOJO_VERSION);
    app.require_subcommand(1);
    dojo::cli::add_numerics_command(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& success) {  // --help, --version
        return app.exit(success);
    } catch (const CLI::ParseError& error) {
        std::cerr << "dojo: error: " << error.what() << "\nRun '" << command_path(app)
                  << " --help' for usage.\n";
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
