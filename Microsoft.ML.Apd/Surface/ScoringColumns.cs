namespace Microsoft.ML.Apd;

/// <summary>The column names a model reads and writes when it scores, fixed by the options it was trained with.</summary>
internal sealed record ScoringColumns(string Features, string Label, string TaskId, string Score, string PredictedLabel,
    string PredictedTask, string TaskConfidence)
{
    public static ScoringColumns From(ApdTrainer.Options o) => new(o.FeatureColumnName, o.LabelColumnName,
        o.TaskIdColumnName, o.ScoreColumnName, o.PredictedLabelColumnName, o.PredictedTaskColumnName, o.TaskConfidenceColumnName);

    /// <summary>The input columns of a model saved before output names could be chosen, with the default outputs.</summary>
    public static ScoringColumns WithDefaultOutputs(string features, string label, string taskId) => new(features, label,
        taskId, ApdTrainer.Options.Defaults.ScoreColumnName, ApdTrainer.Options.Defaults.PredictedLabelColumnName,
        ApdTrainer.Options.Defaults.PredictedTaskColumnName, ApdTrainer.Options.Defaults.TaskConfidenceColumnName);

    public void Write(BinaryWriter w)
    {
        foreach (var name in new[] { Features, Label, TaskId, Score, PredictedLabel, PredictedTask, TaskConfidence })
            w.Write(name);
    }

    public static ScoringColumns Read(BinaryReader r) => new(r.ReadString(), r.ReadString(), r.ReadString(),
        r.ReadString(), r.ReadString(), r.ReadString(), r.ReadString());
}
