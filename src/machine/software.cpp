// Software stacks as modelled choices (software.h).
#include "dojo/machine/software.h"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <optional>

#include "dojo/util/error.h"

namespace dojo::machine {
namespace {

namespace fs = std::filesystem;

std::string values_of(const std::vector<std::string>& values) {
    std::string out;
    for (const std::string& v : values) {
        out += (out.empty() ? "" : " or ") + v;
    }
    return out;
}

std::string required_text(const toml::table& table, const std::string& key, const std::string& file) {
    const toml::node* node = table.get(key);
    if (node == nullptr || !node->is_string() || node->value<std::string>()->empty()) {
        throw UsageError(file + ": needs '" + key + "' (a non-empty string)");
    }
    return *node->value<std::string>();
}

Software read_software(const std::string& file) {
    if (!fs::is_regular_file(file)) {
        throw IoError("software stack " + file + " does not exist or is not a file");
    }
    toml::table doc;
    try {
        doc = toml::parse_file(file);
    } catch (const toml::parse_error& e) {
        throw UsageError(file + ":" + std::to_string(e.source().begin.line) + ":" +
                         std::to_string(e.source().begin.column) + ": not valid TOML: " + std::string(e.description()));
    }
    Software s;
    s.name = fs::path(file).stem().string();
    s.file = file;
    s.description = required_text(doc, "description", file);
    s.source = required_text(doc, "source", file);
    const toml::table* choices = doc["choices"].as_table();
    if (choices == nullptr || choices->empty()) {
        throw UsageError(file + ": needs a [choices] table (docs/machines.md lists them)");
    }
    const auto& known = known_software_choices();
    for (const auto& [key, node] : *choices) {
        const std::string choice(key.str());
        const std::string where = file + ":" + std::to_string(node.source().begin.line) + ": choices." + choice;
        const auto it = known.find(choice);
        if (it == known.end()) {
            std::string names;
            for (const auto& [name, values] : known) {
                names += (names.empty() ? "" : ", ") + name;
            }
            throw UsageError(where + " is not a choice the simulator models; it knows " + names);
        }
        const std::optional<std::string> value = node.value<std::string>();
        if (!value || std::find(it->second.begin(), it->second.end(), *value) == it->second.end()) {
            throw UsageError(where + " must be " + values_of(it->second));
        }
        s.choices[choice] = *value;
    }
    return s;
}

// The stems of the stack files in `machines_dir`/software, sorted, without reading them.
std::vector<std::string> stack_names(const std::string& machines_dir) {
    const fs::path dir = fs::path(machines_dir) / "software";
    std::vector<std::string> names;
    if (fs::is_directory(dir)) {
        for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
            if (entry.is_regular_file() && entry.path().extension() == ".toml") {
                names.push_back(entry.path().stem().string());
            }
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& known_software_choices() {
    static const std::map<std::string, std::vector<std::string>> choices = {
        {"transposed_operands", {"copied", "in_place"}},
        {"bias_gradient", {"pass", "epilogue"}},
        {"tensor_parallel_comm", {"exposed", "overlapped"}},
        {"parameter_gather", {"after_update", "overlapped"}},
        {"fp8_products", {"all", "linear"}},
        {"row_kernels", {"passes", "fused"}},
        {"attention", {"materialised", "fused"}},
        {"saved_activations", {"every_value", "kernel_inputs"}},
    };
    return choices;
}

std::vector<Software> list_software(const std::string& machines_dir) {
    std::vector<Software> out;
    for (const std::string& name : stack_names(machines_dir)) {
        out.push_back(read_software((fs::path(machines_dir) / "software" / (name + ".toml")).string()));
    }
    return out;
}

Software load_software(const std::string& name, const std::string& machines_dir) {
    if (name.ends_with(".toml")) {
        return read_software(name);
    }
    const fs::path file = fs::path(machines_dir) / "software" / (name + ".toml");
    if (!fs::is_regular_file(file)) {
        std::string known;
        for (const std::string& stem : stack_names(machines_dir)) {
            known += (known.empty() ? "" : ", ") + stem;
        }
        throw UsageError("unknown software stack '" + name + "'; " +
                         (known.empty() ? "there are none in " + (fs::path(machines_dir) / "software").string()
                                        : "the stacks are " + known + " (machines/software), or give a .toml file"));
    }
    return read_software(file.string());
}

void apply_software(Machine& m, const Software& software) {
    for (auto& [name, kind] : m.kinds) {
        if (kind.peak_flops.empty()) {
            continue;  // not a GPU
        }
        for (const auto& [choice, value] : software.choices) {
            kind.labels[choice] = value;
        }
    }
    m.software = software.name;
    m.description += " (software: " + software.name + ")";
}

}  // namespace dojo::machine
