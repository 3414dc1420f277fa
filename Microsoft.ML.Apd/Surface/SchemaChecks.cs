using Microsoft.ML.Apd.Engine;
using Microsoft.ML.Data;

namespace Microsoft.ML.Apd;

/// <summary>
/// The input-column checks shared by training (<see cref="ApdTrainer"/>), scoring (<see cref="TaskRouting"/>,
/// <see cref="ApdScorer"/>) and the estimator's <see cref="ApdTrainer.GetOutputSchema"/>: each error names the column
/// and what was expected, as ML.NET trainers do, and is an <see cref="ArgumentOutOfRangeException"/> of
/// <c>paramName</c>.
/// </summary>
internal static class SchemaChecks
{
    private const string ExpectedFeatures = "known-size vector of Single";
    private const string ExpectedTaskId = "String (text)";

    /// <summary>The feature column: a known-size vector of Single (of <paramref name="expectedSize"/> when given).</summary>
    public static DataViewSchema.Column FeatureColumn(DataViewSchema schema, string name, int? expectedSize, string paramName)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(paramName, $"Could not find feature column '{name}'.");
        if (column.Type is not VectorDataViewType { ItemType: NumberDataViewType n, IsKnownSize: true } vector || n != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for feature column '{name}': expected {ExpectedFeatures}, got {column.Type}.");
        if (expectedSize is int size && vector.Size != size)
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for feature column '{name}': expected vector of {size} Single values, got {column.Type}.");
        return column;
    }

    /// <summary>The task id column if present; it must be text.</summary>
    public static DataViewSchema.Column? TaskIdColumn(DataViewSchema schema, string name, string paramName)
    {
        var column = schema.GetColumnOrNull(name);
        if (column is { } c && c.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for task id column '{name}': expected {ExpectedTaskId}, got {c.Type}.");
        return column;
    }

    /// <summary>The label column and its type; for continued training it must be the model's label type.</summary>
    public static (DataViewSchema.Column Column, LabelColumnType Type) LabelColumn(DataViewSchema schema, string name,
        LabelColumnType? expected, string paramName)
    {
        var column = schema.GetColumnOrNull(name)
            ?? throw new ArgumentOutOfRangeException(paramName, $"Could not find label column '{name}'.");
        var type = LabelColumnType.TryCreate(column)
            ?? throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for label column '{name}': expected {LabelColumnType.Expected}, got {column.Type}.");
        if (expected is not null && !expected.Equals(type))
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for label column '{name}': the model's earlier tasks were trained on labels of type {expected}, got {column.Type}. All tasks of one model share the label type.");
        return (column, type);
    }

    /// <summary>For convolutions: the feature vector's size must be the image layout's C·H·W.</summary>
    public static void ImageLayout(DataViewSchema.Column features, ImageLayout? image, string paramName)
    {
        if (image is null) return;
        int size = ((VectorDataViewType)features.Type).Size;
        if (size != image.Size)
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for feature column '{features.Name}': ImageShape ({image.Channels}, {image.Height}, {image.Width}) needs {image.Size} values, the column has {size}.");
    }

    /// <summary><see cref="FeatureColumn(DataViewSchema, string, int?, string)"/> on an estimator's <see cref="SchemaShape"/>.</summary>
    public static SchemaShape.Column FeatureColumn(SchemaShape schema, string name, string paramName)
    {
        if (!schema.TryFindColumn(name, out var column))
            throw new ArgumentOutOfRangeException(paramName, $"Could not find feature column '{name}'.");
        if (column.Kind != SchemaShape.Column.VectorKind.Vector || column.ItemType != NumberDataViewType.Single || column.IsKey)
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for feature column '{name}': expected {ExpectedFeatures}, got {column.GetTypeString()}.");
        return column;
    }

    /// <summary><see cref="LabelColumn(DataViewSchema, string, LabelColumnType?, string)"/> on an estimator's <see cref="SchemaShape"/>.</summary>
    public static SchemaShape.Column LabelColumn(SchemaShape schema, string name, string paramName)
    {
        if (!schema.TryFindColumn(name, out var column))
            throw new ArgumentOutOfRangeException(paramName, $"Could not find label column '{name}'.");
        bool ok = column.Kind == SchemaShape.Column.VectorKind.Scalar
            && (column.IsKey || column.ItemType is TextDataViewType || column.ItemType is BooleanDataViewType || column.ItemType is NumberDataViewType);
        if (!ok)
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for label column '{name}': expected {LabelColumnType.Expected}, got {column.GetTypeString()}.");
        return column;
    }

    /// <summary><see cref="TaskIdColumn"/> on an estimator's <see cref="SchemaShape"/>: true when present (and text).</summary>
    public static bool HasTaskIdColumn(SchemaShape schema, string name, string paramName)
    {
        if (!schema.TryFindColumn(name, out var column))
            return false;
        if (column.Kind != SchemaShape.Column.VectorKind.Scalar || column.ItemType is not TextDataViewType)
            throw new ArgumentOutOfRangeException(paramName,
                $"Schema mismatch for task id column '{name}': expected {ExpectedTaskId}, got {column.GetTypeString()}.");
        return true;
    }
}
