using System.Globalization;
using System.Net;

namespace EdgeShield.Simulators.Cli;

/// <summary>Hand-written option parsing: <c>--name value</c> pairs and bare flags, no reflection.</summary>
internal sealed class Args
{
    private readonly string[] _args;
    private int _next;

    public Args(string[] args, int start)
    {
        _args = args;
        _next = start;
    }

    /// <summary>The next option name, or null at the end.</summary>
    public string? NextOption()
    {
        if (_next >= _args.Length)
        {
            return null;
        }
        return _args[_next++];
    }

    public string Value(string option)
    {
        if (_next >= _args.Length)
        {
            throw new UsageException($"{option} needs a value");
        }
        return _args[_next++];
    }

    public int Int(string option, int min, int max)
    {
        string text = Value(option);
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
        {
            throw new UsageException($"{option}: '{text}' is not a whole number in {min}..{max}");
        }
        return value;
    }

    public IPEndPoint EndPoint(string option)
    {
        string text = Value(option);
        int colon = text.LastIndexOf(':');
        if (colon <= 0
            || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            throw new UsageException($"{option}: '{text}' is not HOST:PORT (e.g. 127.0.0.1:5020)");
        }
        string host = text[..colon].Trim('[', ']');
        if (host == "localhost")
        {
            host = "127.0.0.1";
        }
        if (!IPAddress.TryParse(host, out var address))
        {
            throw new UsageException($"{option}: '{host}' is not an IP address");
        }
        return new IPEndPoint(address, port);
    }
}

internal sealed class UsageException(string message) : Exception(message);
