/** \file
 * The parametric model catalog: models described by a short spec ("mlp:hidden=256x128") and built with the
 * graph builder for a given batch size, sample shape and class count. Building computes nothing; parameters carry
 * an initialisation rule that the runtime applies when (and only if) the model is trained.
 *
 * Specs (this list is what `dojo train --help` shows):
 *   mlp[:hidden=H1xH2x...]   fully connected, ReLU between layers; default hidden=256 (the 784-256-10 MLP)
 *   lenet                    conv 1->6 5x5 (pad 2), ReLU, max-pool 2; conv 6->16 5x5, ReLU, max-pool 2; fc 400->120,
 *                            ReLU; fc 120->classes. For 1x28x28 images.
 *   resnet18, resnet34, resnet50   torchvision's ResNets (BasicBlock [2,2,2,2] and [3,4,6,3]; Bottleneck [3,4,6,3]) for
 *                            [C, H, W] images,
 *                            BatchNorm in training form with running statistics as states; 11,689,512 and 25,557,032
 *                            parameters at 3x224x224 with 1000 classes, as torchvision's.
 *   vit-b16[:layers=,hidden=,heads=,mlp=,patch=]   torchvision's vit_b_16 (86,567,656 parameters at 224 px, 1000
 *                            classes) or a smaller ViT with the same structure.
 *   gpt[:layers=,hidden=,heads=,seq=,vocab=]   GPT-2/3 decoder (pre-LayerNorm, causal, tied embeddings), GPT-2 small by
 *                            default; GPT-3 175B is gpt:layers=96,hidden=12288,heads=96,seq=2048,vocab=51200
 *   bert-large, bert[:layers=,hidden=,heads=,seq=,vocab=]   BERT encoder with the masked-LM head over every position
 *   occupancy[:cameras=,width=,height=,stored=WxH,voxels=XxYxZ,channels=]   eight cameras' frames [3 x cameras, H, W]
 *                            in, a yes/no per voxel cell around the car out (binary target): models/occupancy.py's
 *                            network (src/frontend/catalog_occupancy.cpp), lifting by the production rig's calibration
 *                            at the clips' rendered size `stored` (640x480 by default); trained on clip data, its size
 *                            and camera count are the data's.
 * Language models take token ids and ignore the sample shape and class count (their spec says seq and vocab).
 * Initialisation is PyTorch's default per layer type (U(+-1/sqrt(fan_in)) for weights; norms start at scale 1, bias
 * 0; running variances at 1), not torchvision's model-specific schemes.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "dojo/frontend/model.h"
#include "dojo/ir/graph.h"

namespace dojo::frontend {

/// Builds catalog model `spec` for `batch` samples of `sample_shape` with `classes` outputs; `mode` picks BatchNorm's
/// training form (batch statistics, running-statistic updates) or inference form (running statistics, for
/// evaluation). Throws UsageError for an unknown model name or a malformed option, listing what is valid.
Model build_catalog_model(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes,
                          ImportMode mode = ImportMode::Training);

/// The data a catalog model is built for when no dataset says otherwise: 1x28x28 images and 10 classes for mlp and
/// lenet (Fashion-MNIST), 3x224x224 and 1000 classes for the ImageNet models; for language models, [seq] token ids
/// and the vocabulary size. Throws UsageError for a spec the catalog does not know.
struct SampleSpec {
    ir::Shape sample_shape;
    int classes = 0;
    bool token_ids = false;  ///< a language model: samples are token ids, a label per position
    bool causal = false;     ///< a language model that predicts each position from the ones before it (gpt)
};
SampleSpec catalog_sample(std::string_view spec);

/// The catalog's model names and option syntax, one per line.
std::string catalog_help();

}  // namespace dojo::frontend
