using Microsoft.ML.Apd.Engine;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Apd.Benchmarks;

/// <summary>The reference APD is compared with: a plain TorchSharp network of the same shape, Adam, same batch —
/// with TorchSharp's Adam (what a user writes), or with the library's <see cref="FlatAdam"/> (the same optimizer code
/// APD trains with).</summary>
internal sealed class PlainNetwork : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly List<TorchSharp.Modules.Parameter> _parameters;
    private readonly optim.Optimizer? _optimizer;
    private readonly FlatAdam? _flatAdam;

    public PlainNetwork(bool convolutional, bool flatAdam = false, int hidden1 = 256, int hidden2 = 128, int classes = 10)
    {
        _model = convolutional
            ? nn.Sequential(
                nn.Unflatten(1, new long[] { 1, 28, 28 }),
                nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(20, 50, 5), nn.ReLU(), nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(50 * 4 * 4, 800), nn.ReLU(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, classes))
            : nn.Sequential(nn.Linear(784, hidden1), nn.ReLU(), nn.Linear(hidden1, hidden2), nn.ReLU(), nn.Linear(hidden2, classes));
        _parameters = _model.parameters().ToList();
        if (flatAdam) _flatAdam = new FlatAdam(_parameters, 1e-3);
        else _optimizer = optim.Adam(_parameters, 1e-3);
    }

    public void Step(Tensor features, Tensor labels)
    {
        using var scope = NewDisposeScope();
        if (_optimizer is not null) _optimizer.zero_grad();
        else foreach (var p in _parameters) p.grad!.zero_();
        var loss = nn.functional.cross_entropy(_model.call(features), labels);
        loss.backward();
        _optimizer?.step();
        _flatAdam?.Step();
    }

    public void Dispose()
    {
        _optimizer?.Dispose();
        _flatAdam?.Dispose();
        _model.Dispose();
    }
}
