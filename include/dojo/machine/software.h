/** \file
 * Software stacks: the choices a training framework makes on a GPU that change what a step costs, as modelled
 * choices in a description (machines/software/NAME.toml), not in code. A stack sets labels on every GPU kind of a
 * machine (a kind with `peak` FLOP/s), overriding the kind's defaults; the simulator reads them as it reads any
 * kind label (sim/topology.h Device). docs/machines.md lists the choices and what each one changes.
 *
 * A stack names its `description`, its `source` (where the choices are documented: a framework's configuration or
 * documentation) and a `[choices]` table. Each choice is one of known_software_choices() with one of its values;
 * anything else, a missing key or a file that does not exist is a UsageError or IoError that says what is accepted.
 */
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dojo/machine/machine.h"

namespace dojo::machine {

struct Software {
    std::string name;         ///< the file's stem: "nemo-te-2023"
    std::string description;
    std::string source;       ///< where the choices are documented
    std::string file;
    std::map<std::string, std::string> choices;  ///< choice -> value, e.g. "bias_gradient" -> "epilogue"
};

/// Each choice a stack may make and the values it accepts, the first being a GPU kind's default where the kind
/// says nothing.
const std::map<std::string, std::vector<std::string>>& known_software_choices();

/// The stacks in `dir`/software (each NAME.toml there), sorted by name; none where the directory does not exist.
std::vector<Software> list_software(const std::string& machines_dir);

/// Loads the stack NAME from `machines_dir`/software, or a stack file by path (a name ending in .toml).
Software load_software(const std::string& name, const std::string& machines_dir);

/// Sets the stack's choices as labels of every GPU kind of `m` (a kind with peak FLOP/s); kinds of other
/// devices (a Dojo D1, a CPU host) are left alone. Records the stack in Machine::software, which reports print.
void apply_software(Machine& m, const Software& software);

}  // namespace dojo::machine
