// Software stacks (machine/software.h): the shipped ones load, a stack sets its choices on the GPU kinds only, and a
// bad stack is refused with the file, the key and what is accepted.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "dojo/machine/machine.h"
#include "dojo/machine/software.h"
#include "dojo/util/error.h"

namespace dojo::machine {
namespace {

namespace fs = std::filesystem;

TEST(Software, ShippedStacksLoadAndSetTheirChoicesOnGpuKindsOnly) {
    const std::string dir = default_machines_dir();
    std::vector<std::string> names;
    for (const Software& s : list_software(dir)) {
        names.push_back(s.name);
        EXPECT_FALSE(s.source.empty()) << s.name;
    }
    EXPECT_NE(std::find(names.begin(), names.end(), "megatron-lm-2021"), names.end());
    EXPECT_NE(std::find(names.begin(), names.end(), "nemo-te-2023"), names.end());

    const Software te = load_software("nemo-te-2023", dir);
    EXPECT_EQ(te.choices.at("tensor_parallel_comm"), "overlapped");
    Machine gpus = load_machine("superpod-h100:nodes=2", dir);
    EXPECT_EQ(gpus.kind("h100-sxm").labels.count("tensor_parallel_comm"), 0u);  // the kind's default: exposed
    apply_software(gpus, te);
    EXPECT_EQ(gpus.kind("h100-sxm").labels.at("tensor_parallel_comm"), "overlapped");
    EXPECT_EQ(gpus.kind("h100-sxm").labels.at("bias_gradient"), "epilogue");
    EXPECT_EQ(gpus.kind("dgx-h100").labels.count("bias_gradient"), 0u);  // a node, not a GPU
    EXPECT_EQ(gpus.software, "nemo-te-2023");
    EXPECT_EQ(gpus.name, "superpod-h100");  // the preset's name: a spec that loads again

    Machine dojo = load_machine("tile", dir);
    const std::string before = dojo.kind("d1").labels.at("bias_gradient");
    apply_software(dojo, load_software("megatron-lm-2021", dir));
    EXPECT_EQ(dojo.kind("d1").labels.at("bias_gradient"), before);  // Dojo's compiler is not a GPU framework
}

TEST(Software, BadStacksAreRefusedSayingWhatIsAccepted) {
    const fs::path dir = fs::temp_directory_path() / ("dojo-software-test-" + std::to_string(::getpid()));
    fs::create_directories(dir / "software");
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir / "software" / (name + ".toml")) << text;
    };
    auto message = [&](const std::string& name) {
        try {
            load_software(name, dir.string());
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    const std::string head = "description = \"d\"\nsource = \"s\"\n[choices]\n";
    write("good", head + "bias_gradient = \"epilogue\"\n");
    EXPECT_EQ(load_software("good", dir.string()).choices.at("bias_gradient"), "epilogue");
    write("unknown-key", head + "flash_attention = \"on\"\n");
    EXPECT_NE(message("unknown-key").find("choices.flash_attention is not a choice the simulator models; it knows "
                                          "attention, bias_gradient, fp8_products, parameter_gather, row_kernels, "
                                          "saved_activations, "
                                          "tensor_parallel_comm, transposed_operands"),
              std::string::npos)
        << message("unknown-key");
    write("bad-value", head + "tensor_parallel_comm = \"sometimes\"\n");
    EXPECT_NE(message("bad-value").find("bad-value.toml:4: choices.tensor_parallel_comm must be exposed or overlapped"),
              std::string::npos)
        << message("bad-value");
    write("no-source", "description = \"d\"\n[choices]\nbias_gradient = \"pass\"\n");
    EXPECT_NE(message("no-source").find("needs 'source'"), std::string::npos) << message("no-source");
    write("no-choices", "description = \"d\"\nsource = \"s\"\n");
    EXPECT_NE(message("no-choices").find("needs a [choices] table"), std::string::npos);
    write("broken", "description = [\n");
    EXPECT_NE(message("broken").find("not valid TOML"), std::string::npos) << message("broken");
    EXPECT_NE(message("nemo").find("unknown software stack 'nemo'; the stacks are bad-value, broken, good, no-choices"),
              std::string::npos)
        << message("nemo");
    EXPECT_NE(message((dir / "missing.toml").string()).find("does not exist"), std::string::npos);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace dojo::machine
