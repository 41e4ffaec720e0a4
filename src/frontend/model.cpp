#include "dojo/frontend/model.h"

#include <string>

#include "dojo/frontend/catalog.h"
#include "dojo/frontend/onnx.h"
#include "dojo/util/error.h"

namespace dojo::frontend {

namespace {

Model imported_model(std::string_view spec, std::int64_t batch, ImportMode mode) {
    OnnxModel imported = import_onnx(std::string(spec), batch, mode);
    Model model;
    model.spec = std::string(spec);
    model.input = imported.input;
    model.logits = imported.output;
    model.values = std::move(imported.initial_values);
    model.state_updates = std::move(imported.state_updates);
    model.graph = std::move(imported.graph);
    model.from_onnx = true;
    return model;
}

}  // namespace

Model load_model_as_declared(std::string_view spec, std::int64_t batch, ImportMode mode) {
    if (spec.ends_with(".onnx")) {
        return imported_model(spec, batch, mode);
    }
    const SampleSpec sample = catalog_sample(spec);
    return build_catalog_model(spec, batch, sample.sample_shape, sample.classes, mode);
}

Model load_model(std::string_view spec, std::int64_t batch, const ir::Shape& sample_shape, int classes,
                 ImportMode mode) {
    if (!spec.ends_with(".onnx")) {
        return build_catalog_model(spec, batch, sample_shape, classes, mode);
    }
    Model model = imported_model(spec, batch, mode);
    const ir::Shape& in = model.graph.type(model.input).shape;
    if (in.numel() != batch * sample_shape.numel()) {
        throw UsageError(std::string(spec) + " takes samples of shape " + in.to_string() + " (batch first) but the " +
                         "data has samples of " + sample_shape.to_string() + "; export the model for that input");
    }
    const ir::Shape& out = model.graph.type(model.logits).shape;
    if (!(out == ir::Shape{batch, classes})) {
        throw UsageError(std::string(spec) + " produces " + out.to_string() + " but training needs [batch, " +
                         std::to_string(classes) + "] logits for this dataset");
    }
    return model;
}

}  // namespace dojo::frontend
