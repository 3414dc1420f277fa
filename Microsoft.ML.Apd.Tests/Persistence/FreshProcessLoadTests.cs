using System.Diagnostics;
using System.Text.RegularExpressions;
using Microsoft.ML.Apd.Samples;
using Microsoft.ML.Apd.Tests.MLNet;

namespace Microsoft.ML.Apd.Tests.Persistence;

/// <summary>
/// A model saved here loads in another process with nothing but <c>new MLContext().Model.Load</c>: the
/// examples/ScoreSavedModel program (built with the solution) loads it and predicts, and its predictions are the ones
/// this process makes.
/// </summary>
[TestClass]
public sealed class FreshProcessLoadTests
{
    [TestMethod]
    public void SavedModelLoadsAndPredictsInAFreshProcess()
    {
        var ml = new MLContext(seed: 1);
        var (train, test) = FashionMnist.LoadSubset();
        var options = SplitFashionMnistTests.Options();
        options.HiddenLayerSizes = [64];
        options.NumberOfEpochs = 1;
        var trainer = ml.MulticlassClassification.Trainers.Apd(options);
        trainer.Fit(ml.Data.LoadFromEnumerable(SplitFashionMnistTests.Rows(train, [0, 1], "tops")), "tops");
        using var model = trainer.Fit(ml.Data.LoadFromEnumerable(SplitFashionMnistTests.Rows(train, [7, 9], "shoes")), "shoes");
        string path = Path.Combine(Path.GetTempPath(), $"apd-fresh-process-{Environment.ProcessId}.zip");
        try
        {
            ml.Model.Save(model, ml.Data.LoadFromEnumerable(SplitFashionMnistTests.Rows(test, [0, 1], "tops")).Schema, path);
            string output = RunScoreSavedModel(path);

            StringAssert.Contains(output, "2 tasks (tops, shoes)");
            var printed = Regex.Matches(output, @"\[(\w+)\] predicted (.+?)\s+\(").Select(m => (Task: m.Groups[1].Value, Label: m.Groups[2].Value)).ToList();
            Assert.HasCount(6, printed, output);
            foreach (var task in model.Tasks)
            {
                // The program scores the first three test images of each task's classes.
                var classes = model.GetClassNames(task);
                var rows = Enumerable.Range(0, test.Count).Where(i => classes.Contains(FashionMnist.ClassNames[test.Labels[i]])).Take(3)
                    .Select(i => new SplitFashionMnistTests.FashionRow { Features = test.Images[i] }).ToList();
                using var view = model.ForTask(task);
                var engine = ml.Model.CreatePredictionEngine<SplitFashionMnistTests.FashionRow, SplitFashionMnistTests.FashionPrediction>(view);
                CollectionAssert.AreEqual(rows.Select(r => engine.Predict(r).PredictedLabel).ToList(),
                    printed.Where(p => p.Task == task).Select(p => p.Label.Trim()).ToList(), task);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string RunScoreSavedModel(string modelPath)
    {
        // bin/<Configuration>/net10.0 of this test assembly → the same of the example.
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string configuration = output.Parent!.Name, framework = output.Name;
        var repo = output;
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "Apd.sln"))) repo = repo.Parent;
        Assert.IsNotNull(repo, "repository root (Apd.sln) not found above " + output.FullName);
        string program = Path.Combine(repo.FullName, "examples", "ScoreSavedModel", "bin", configuration, framework, "ScoreSavedModel.dll");
        Assert.IsTrue(File.Exists(program), $"{program} is missing: build the solution (dotnet build) first.");

        var start = new ProcessStartInfo("dotnet", [program, modelPath]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.IsTrue(process.WaitForExit(TimeSpan.FromMinutes(2)), "ScoreSavedModel did not finish");
        Assert.AreEqual(0, process.ExitCode, stdout.Result + stderr.Result);
        return stdout.Result;
    }
}
