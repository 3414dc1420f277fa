using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>Everything a run measured, with its settings and data source: the content of results.json.</summary>
public sealed record ExperimentResults(ExperimentSettings Settings, string DataSource, MachineDescription Machine,
    IReadOnlyList<MethodSummary> Summaries, IReadOnlyList<MethodRun> Runs, double TotalSeconds)
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        // --apd-mask-logit random is NaN in the settings.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    public static ExperimentResults Load(string path) => JsonSerializer.Deserialize<ExperimentResults>(File.ReadAllText(path), Json)
        ?? throw new FormatException($"{path} holds no results.");
}

public sealed record MachineDescription(string OperatingSystem, int ProcessorCount, string Runtime, DateTimeOffset Date)
{
    public static MachineDescription Current() => new(System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        Environment.ProcessorCount, System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription, DateTimeOffset.Now);
}
