using Microsoft.ML.Apd.Persistence;
using Microsoft.ML.Data;
using Microsoft.ML.Model.OnnxConverter;

namespace Microsoft.ML.Apd;

// ML.NET's ConvertToOnnx transforms its input with the model, then walks back from the result through
// IDataTransform.Source, asking each step that is an ITransformCanSaveOnnx to add its nodes (MLNetInternals.cs). A
// scored view that is not one ends the walk: ML.NET then writes a graph whose inputs are the scored columns (Score,
// PredictedLabel) and which computes nothing. Being one, the APD step adds its graph (ApdOnnxGraph) after whatever
// came before it (a normalizer, ...), so a whole pipeline exports in one call.
internal sealed partial class ApdScoredDataView : ITransformCanSaveOnnx
{
    /// <summary>The scored input, for ML.NET's walk back through the pipeline.</summary>
    public IDataView Source => _source;

    /// <summary>Always true: what cannot be exported (inferred routing) fails in <see cref="SaveAsOnnx"/> with a message
    /// saying why; false would make ML.NET stop its walk here and silently write a graph without the model.</summary>
    public bool CanSaveOnnx(OnnxContext ctx) => true;

    public void SaveAsOnnx(OnnxContext ctx) => ApdOnnxGraph.Save(ctx, _scorer);

    /// <summary>Required of an IDataTransform; only ML.NET's legacy data pipes save one. A model is saved whole with
    /// <c>mlContext.Model.Save</c>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) => throw new NotSupportedException(
        "The output of an APD model's Transform cannot be saved as a data pipe; save the model with mlContext.Model.Save(model, schema, path).");
}
