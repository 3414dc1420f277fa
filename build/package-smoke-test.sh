#!/usr/bin/env bash
# Packs Microsoft.ML.Apd, then builds and runs a throw-away console app that references the package from a local
# folder plus TorchSharp-cpu, as a user would. Proves the package restores, its buildTransitive glibc fix-up runs,
# and TorchSharp trains. A unique prerelease version keeps the NuGet cache from serving a stale copy.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version="0.1.0-smoke.$(date +%s)"

dotnet pack "$repo/Microsoft.ML.Apd/Microsoft.ML.Apd.csproj" -c Release -o "$work/feed" -p:Version="$version" >/dev/null
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
using TorchSharp;
using static TorchSharp.torch;
torch.random.manual_seed(1);
var model = nn.Linear(4, 1);
var x = randn(64, 4);
var y = x.matmul(ones(4, 1));
var optimizer = optim.SGD(model.parameters(), 0.1);
float first = 0, last = 0;
for (int i = 0; i < 50; i++)
{
    optimizer.zero_grad();
    var loss = (model.call(x) - y).pow(2).mean();
    loss.backward();
    optimizer.step();
    if (i == 0) first = loss.item<float>();
    last = loss.item<float>();
}
Console.WriteLine($"loss {first:F4} -> {last:F4}; Microsoft.ML.Apd {typeof(Microsoft.ML.Apd.ApdTrainer).Assembly.GetName().Version}");
return last < first / 10 ? 0 : 1;
CS
(cd "$work/app" && dotnet run -c Release)
