// Catalog model specs and sizes: every parameter has a range, sizes are overflow-checked, a key is given once, and
// an impossible model is named as such (not as "no strategy fits").
#include <gtest/gtest.h>

#include "error_case.h"

namespace dojo::test {
namespace {

TEST(SpecErrors, HugeSequenceIsRangeCheckedInEveryCommand) {
    const std::string gpt = "gpt:layers=1,hidden=64,heads=1,seq=4294967296,vocab=100";
    expect_rejected({{"plan", gpt, "--machine", "tile", "--batch", "8"}, "seq=4294967296"});
    expect_rejected({{"sim", gpt, "--machine", "tile", "--batch", "8"}, "seq=4294967296"});
    expect_rejected({{"train", gpt, "--data", "synthetic", "--train-limit", "64"}, "seq=4294967296"});
    expect_rejected({{"sim", "gpt:layers=1,hidden=64,heads=1,seq=100000000,vocab=100", "--machine", "tile",
                      "--batch", "8"},
                     "seq=1..16384"});
    expect_rejected({{"sim", "gpt:layers=1,hidden=64,heads=1,seq=2147483648,vocab=100", "--machine", "tile",
                      "--batch", "8"},
                     "seq=2147483648"});
}

TEST(SpecErrors, HugeWidthsAreRangeChecked) {
    expect_rejected({{"sim", "gpt:layers=1,hidden=99999999999,heads=1,seq=4,vocab=100", "--machine", "tile",
                      "--batch", "8"},
                     "hidden=99999999999"});
    expect_rejected({{"sim", "bert:seq=4294967296", "--machine", "tile", "--batch", "8"}, "seq=4294967296"});
    expect_rejected({{"sim", "unet:channels=4294967296", "--machine", "tile", "--batch", "8"},
                     "channels=4294967296"});
    expect_rejected({{"train", "mlp:hidden=99999999999", "--data", "synthetic", "--train-limit", "64"},
                     "hidden=99999999999"});
}

TEST(SpecErrors, DuplicateKeysAreRefused) {
    expect_rejected({{"sim", "gpt:layers=2,layers=3", "--machine", "tile", "--batch", "8"}, "'layers' is given twice"});
    expect_rejected({{"sim", "unet:size=32,size=64", "--machine", "tile", "--batch", "8"}, "'size' is given twice"});
    expect_rejected({{"sim", "mlp", "--machine", "superpod-a100:nodes=2,nodes=3", "--batch", "64"},
                     "parameter 'nodes' is given twice"});
    expect_rejected({{"machine", "show", "superpod-a100:nodes=2,nodes=3"}, "parameter 'nodes' is given twice"});
    expect_rejected({{"sim", "mlp", "--machine", "d1", "--batch", "64", "--strategy", "dp=1,dp=1"}, "dp"});
}

TEST(SpecErrors, AnImpossibleModelIsNamedNotReportedAsUnfit) {
    expect_rejected({{"sim", "vit-b16:patch=0", "--machine", "tile", "--batch", "8"}, "patch=0"});
    expect_rejected({{"sim", "vit-b16:patch=1000", "--machine", "tile", "--batch", "8"}, "patch=1000"});
    expect_rejected({{"sim", "unet:size=3", "--machine", "tile", "--batch", "8"}, "size (3) must be a multiple"});
    expect_rejected({{"sim", "unet:levels=40", "--machine", "tile", "--batch", "8"}, "levels=40"});
    expect_rejected({{"sim", "gpt:", "--machine", "tile", "--batch", "8"}, "nothing follows the ':'"});
}

TEST(SpecErrors, AHugeSyntheticSampleIsRefusedBeforeAllocation) {
    expect_rejected({{"train", "mlp", "--data", "synthetic", "--sample-shape", "100000,100000,100000"},
                     "--sample-shape"});
}

}  // namespace
}  // namespace dojo::test
