using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Samples.Continual;

/// <summary>The baselines' shared training and evaluation loops: Adam on shuffled mini-batches, cross-entropy.</summary>
public static class MiniBatchTraining
{
    /// <param name="penalty">An extra loss term, e.g. EWC's, or null.</param>
    public static void Train(Func<Tensor, Tensor> forward, IEnumerable<Parameter> parameters, string task, TaskData data,
        ExperimentSettings settings, IProgress<TrainingStep> progress, Func<Tensor>? penalty = null)
    {
        using var optimizer = optim.Adam(parameters, settings.LearningRate);
        // Seeded per task so every method sees the same batches in the same order.
        using var generator = new Generator((ulong)StableSeed.Combine(settings.Seed, task));
        int batches = (data.Count + settings.BatchSize - 1) / settings.BatchSize;
        for (int epoch = 1; epoch <= settings.Epochs; epoch++)
        {
            using var shuffled = randperm(data.Count, generator: generator);
            for (int batch = 0; batch < batches; batch++)
            {
                using var scope = NewDisposeScope();
                var rows = shuffled[(batch * settings.BatchSize)..Math.Min((batch + 1) * settings.BatchSize, data.Count)];
                optimizer.zero_grad();
                var loss = nn.functional.cross_entropy(forward(data.Images.index_select(0, rows)), data.Labels.index_select(0, rows));
                if (penalty is not null) loss = loss + penalty();
                loss.backward();
                optimizer.step();
                progress.Report(new TrainingStep(task, epoch, settings.Epochs, batch + 1, batches, loss.item<float>()));
            }
        }
    }

    public static double Accuracy(Func<Tensor, Tensor> forward, TaskData data, int batchSize = 1000)
    {
        using var noGrad = no_grad();
        long correct = 0;
        for (int start = 0; start < data.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            int end = Math.Min(start + batchSize, data.Count);
            var predicted = forward(data.Images[start..end]).argmax(1);
            correct += predicted.eq(data.Labels[start..end]).sum().item<long>();
        }
        return data.Count == 0 ? 0 : (double)correct / data.Count;
    }
}
