#include "cli_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace dojo::test {
namespace {

std::string slurp(const std::filesystem::path& path) {
    std::ifstream file(path);
    std::stringstream buffer;
    buffer << file.rdbuf();
    return buffer.str();
}

}  // namespace

std::string shell_quoted(const std::string& arg) {
    std::string result = "'";
    for (const char c : arg) {
        result += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return result + "'";
}

CliResult run_shell(const std::string& command_line, const std::string& input) {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("dojo-cli-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::ofstream(dir / "stdin") << input;
    }
    const std::string command = command_line + " < " + shell_quoted((dir / "stdin").string()) + " > " +
                                shell_quoted((dir / "stdout").string()) + " 2> " +
                                shell_quoted((dir / "stderr").string());
    const int status = std::system(command.c_str());
    if (status == -1 || !WIFEXITED(status)) {
        throw std::runtime_error("could not run: " + command);
    }
    CliResult result;
    result.exit_code = WEXITSTATUS(status);
    result.out = slurp(dir / "stdout");
    result.err = slurp(dir / "stderr");
    std::filesystem::remove_all(dir);
    return result;
}

std::string dojo_command(const std::vector<std::string>& args) {
    std::string command = shell_quoted(DOJO_CLI_PATH);
    for (const std::string& arg : args) {
        command += " " + shell_quoted(arg);
    }
    return command;
}

CliResult run_dojo(const std::vector<std::string>& args, const std::string& input) {
    return run_shell(dojo_command(args), input);
}

CliResult run_dojo_mpi(int ranks, const std::vector<std::string>& args) {
    return run_shell(std::string(DOJO_MPIRUN) + " -np " + std::to_string(ranks) + " " + dojo_command(args));
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream stream(text);
    for (std::string line; std::getline(stream, line);) {
        lines.push_back(line);
    }
    return lines;
}

}  // namespace dojo::test
