using System.Net;
using System.Net.Sockets;

namespace EdgeShield.Policy;

/// <summary>
/// A client's IP address as a 128-bit value (IPv4 as IPv4-mapped IPv6), taken once per
/// connection so that verdicts compare integers and allocate nothing.
/// </summary>
public readonly record struct SourceAddress(UInt128 Value)
{
    public static SourceAddress From(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address = address.MapToIPv6();
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        return new SourceAddress(System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(bytes));
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, Value);
        var address = new IPAddress(bytes);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    public override string ToString() => ToIPAddress().ToString();
}
