#!/usr/bin/env bash
# Packs Microsoft.ML.Apd, checks what the package says about itself (symbols, release notes, no placeholder URL), then
# builds and runs a throw-away console app that references the package from a local folder plus TorchSharp-cpu, as a
# user would. Proves the package restores, TorchSharp's native library loads (on older Linux through the library's
# runtime fix: nothing in the app's build touches it) and an APD model trains. A unique prerelease version keeps the
# NuGet cache from serving a stale copy.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version="0.1.0-smoke.$(date +%s)"

dotnet pack "$repo/Microsoft.ML.Apd/Microsoft.ML.Apd.csproj" -c Release -o "$work/feed" -p:Version="$version" >/dev/null
test -f "$work/feed/Microsoft.ML.Apd.$version.snupkg" || { echo "no symbol package" >&2; exit 1; }
nuspec="$(unzip -p "$work/feed/Microsoft.ML.Apd.$version.nupkg" Microsoft.ML.Apd.nuspec)"
grep -q "<releaseNotes>" <<<"$nuspec" || { echo "no release notes" >&2; exit 1; }
if grep -q "example.invalid" <<<"$nuspec"; then echo "placeholder repository URL" >&2; exit 1; fi
grep -q '<dependency id="Microsoft.ML" version="5.0.1"' <<<"$nuspec" || { echo "Microsoft.ML dependency is not >= 5.0.1" >&2; exit 1; }
mkdir -p "$work/app"
cat > "$work/app/nuget.config" <<XML
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$work/feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
cat > "$work/app/app.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings></PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Microsoft.ML.Apd" Version="$version" />
    <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
  </ItemGroup>
</Project>
XML
cat > "$work/app/Program.cs" <<'CS'
using Microsoft.ML;
using Microsoft.ML.Apd;
using Microsoft.ML.Data;

var ml = new MLContext(seed: 1);
ml.Log += (_, e) => { if (e.Source == nameof(TorchSharpLoader) && e.Kind == Microsoft.ML.Runtime.ChannelMessageKind.Info) Console.WriteLine(e.RawMessage); };
var random = new Random(1);
var rows = Enumerable.Range(0, 200).Select(_ =>
{
    var f = Enumerable.Range(0, 4).Select(_ => (float)random.NextDouble() * 2 - 1).ToArray();
    return new Row { Features = f, Label = f[0] > 0 ? "right" : "left" };
}).ToList();
var data = ml.Data.LoadFromEnumerable(rows);
var trainer = ml.MulticlassClassification.Trainers.Apd(new ApdTrainer.Options { HiddenLayerSizes = new[] { 16 }, NumberOfEpochs = 20, BatchSize = 20, LearningRate = 1e-2 });
using var model = trainer.Fit(data, "sides");
var metrics = ml.MulticlassClassification.Evaluate(model.ForTask("sides").Transform(data));
Console.WriteLine($"accuracy {metrics.MicroAccuracy:P1}; {model.GetStatistics()}; Microsoft.ML {Version(typeof(MLContext))}, Microsoft.ML.Apd {Version(typeof(ApdTrainer))}");
return metrics.MicroAccuracy > 0.9 ? 0 : 1;

static string? Version(Type t) => System.Reflection.CustomAttributeExtensions
    .GetCustomAttribute<System.Reflection.AssemblyInformationalVersionAttribute>(t.Assembly)?.InformationalVersion.Split('+')[0];

public class Row
{
    [VectorType(4)] public float[] Features { get; set; } = [];
    public string Label { get; set; } = "";
}
CS
(cd "$work/app" && dotnet run -c Release)
