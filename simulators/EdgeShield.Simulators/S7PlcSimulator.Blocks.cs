using System.Buffers.Binary;
using EdgeShield.Protocols.S7comm;

namespace EdgeShield.Simulators;

public sealed partial class S7PlcSimulator
{
    private const int MaxBlockLength = 65535;

    /// <summary>The load memory image of a block; a DB's is made from its current data. Under <see cref="_sync"/>.</summary>
    private byte[]? BlockImage(byte type, int number)
    {
        if (type == S7Blocks.TypeDb)
        {
            return _dbs.TryGetValue(number, out var db) ? S7Blocks.Image(type, number, db) : null;
        }
        return _codeBlocks.TryGetValue((type, number), out var image) ? image : null;
    }

    /// <summary>Activates a downloaded block (PI <c>_INSE</c>): a DB takes its MC7 bytes as data. Under <see cref="_sync"/>.</summary>
    private void Insert(byte type, int number, byte[] image)
    {
        if (type == S7Blocks.TypeDb)
        {
            int length = Math.Min(S7Blocks.Mc7Length(image), image.Length - S7Blocks.HeaderLength);
            _dbs[number] = image.AsSpan(S7Blocks.HeaderLength, Math.Max(length, 0)).ToArray();
        }
        else
        {
            _codeBlocks[(type, number)] = image;
        }
    }

    /// <summary>PI <c>_DELE</c>. Under <see cref="_sync"/>.</summary>
    private bool Delete(byte type, int number) => type == S7Blocks.TypeDb ? _dbs.Remove(number) : _codeBlocks.Remove((type, number));

    /// <summary>How many blocks of a type exist. Under <see cref="_sync"/>.</summary>
    private int BlockCount(byte type)
    {
        if (type == S7Blocks.TypeDb)
        {
            return _dbs.Count;
        }
        int count = 0;
        foreach (var key in _codeBlocks.Keys)
        {
            if (key.Type == type)
            {
                count++;
            }
        }
        return count;
    }

    private sealed partial class Session
    {
        private byte[]? _upload;
        private int _uploadOffset;
        private (byte Type, int Number, byte[] Image)? _passive;
        private Download? _download;

        private sealed class Download(byte type, int number, int loadLength)
        {
            public byte Type { get; } = type;
            public int Number { get; } = number;
            public byte[] Image { get; } = new byte[loadLength];
            public int Received { get; set; }
            public ushort Reference { get; set; }
            public bool Ending { get; set; }
        }

        private bool UploadJob(in S7Request request, in S7Expectation expected)
        {
            if (!_authorized)
            {
                return JobError(expected, ErrorNeedPassword);
            }
            var p = request.Header.Parameters;
            switch (request.Function)
            {
                case S7Function.StartUpload:
                    {
                        // | 1D | status | 2 | upload id (4) | name length | _0TNNNNNA |
                        if (p.Length < 18 || p[8] != 9 || p[9] != (byte)'_' || !S7Blocks.TryParseName(p.Slice(10, 7), out byte type, out int number))
                        {
                            return JobError(expected, ErrorServiceNotAvailable);
                        }
                        lock (_plc._sync)
                        {
                            _upload = _plc.BlockImage(type, number);
                        }
                        if (_upload is null)
                        {
                            return JobError(expected, ErrorBlockNotFound);
                        }
                        _uploadOffset = 0;
                        // | 1D | 00 | 01 00 | upload id 00000007 | 07 | load length as 7 ASCII digits |
                        int length = AckDataHeader(request.Reference, 16, 0);
                        var o = _out.AsSpan(S7Limits.AckHeaderLength);
                        o[0] = S7Functions.StartUpload;
                        o[1] = 0;
                        o[2] = 0x01;
                        o[3] = 0;
                        BinaryPrimitives.WriteUInt32BigEndian(o[4..], UploadId);
                        o[8] = 7;
                        S7Blocks.WriteDigits(o.Slice(9, 7), _upload.Length);
                        return Send(length);
                    }
                case S7Function.Upload:
                    {
                        if (_upload is null)
                        {
                            return JobError(expected, ErrorStateConflict);
                        }
                        // | 1E | 01 more / 00 last |, data | length (2) | 00 FB | block bytes |
                        int slice = Math.Min(_upload.Length - _uploadOffset, _pduSize - S7Limits.AckHeaderLength - 2 - 4);
                        bool last = _uploadOffset + slice == _upload.Length;
                        int length = AckDataHeader(request.Reference, 2, 4 + slice);
                        var o = _out.AsSpan(S7Limits.AckHeaderLength);
                        o[0] = S7Functions.Upload;
                        o[1] = last ? (byte)0 : (byte)1;
                        BinaryPrimitives.WriteUInt16BigEndian(o[2..], (ushort)slice);
                        o[4] = 0x00;
                        o[5] = 0xFB;
                        _upload.AsSpan(_uploadOffset, slice).CopyTo(o[6..]);
                        _uploadOffset += slice;
                        return Send(length);
                    }
                default:
                    {
                        if (_upload is null)
                        {
                            return JobError(expected, ErrorStateConflict);
                        }
                        _upload = null;
                        Interlocked.Increment(ref _plc._uploads);
                        int length = AckDataHeader(request.Reference, 1, 0);
                        _out[S7Limits.AckHeaderLength] = S7Functions.EndUpload;
                        return Send(length);
                    }
            }
        }

        private const uint UploadId = 7;

        private bool RequestDownload(in S7Request request, in S7Expectation expected)
        {
            if (!_authorized)
            {
                return JobError(expected, ErrorNeedPassword);
            }
            // | 1A | 6 | id | 09 | _0TNNNNNP | 0D | '1' | load length (6 ASCII) | MC7 length (6 ASCII) |
            var p = request.Header.Parameters;
            if (p.Length < 32 || p[8] != 9 || p[9] != (byte)'_' || !S7Blocks.TryParseName(p.Slice(10, 7), out byte type, out int number)
                || p[18] != 13)
            {
                return JobError(expected, ErrorServiceNotAvailable);
            }
            int load = S7Blocks.ReadDigits(p.Slice(20, 6));
            if (load < S7Blocks.HeaderLength || load > MaxBlockLength || _download is not null)
            {
                return JobError(expected, ErrorStateConflict);
            }
            _download = new Download(type, number, load);
            int length = AckDataHeader(request.Reference, 1, 0);
            _out[S7Limits.AckHeaderLength] = S7Functions.RequestDownload;
            return Send(length) && SendDownloadJob(S7Functions.DownloadBlock);
        }

        /// <summary>The CPU's own job of a download: download-block (asking for the next part) or download-ended.</summary>
        private bool SendDownloadJob(byte function)
        {
            var d = _download!;
            d.Reference = ++_plcReference;
            d.Ending = function == S7Functions.DownloadEnded;
            // | 1B/1C | 00 | 01 00 | 00000000 | 09 | _0TNNNNNP |
            var o = _out.AsSpan();
            o[0] = S7Limits.ProtocolId;
            o[1] = (byte)S7Rosctr.Job;
            o[2] = 0;
            o[3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(o[4..], d.Reference);
            BinaryPrimitives.WriteUInt16BigEndian(o[6..], 18);
            BinaryPrimitives.WriteUInt16BigEndian(o[8..], 0);
            var p = o[S7Limits.HeaderLength..];
            p[0] = function;
            p[1] = 0;
            p[2] = 0x01;
            p[3] = 0;
            BinaryPrimitives.WriteUInt32BigEndian(p[4..], 0);
            p[8] = 9;
            S7Blocks.WriteFileName(p[9..], d.Type, d.Number, (byte)'P');
            return Send(S7Limits.HeaderLength + 18);
        }

        /// <summary>An Ack or Ack_Data from the client: only the answers to the CPU's download jobs are expected.</summary>
        private bool HandleClientAnswer(S7Header header)
        {
            var d = _download;
            if (d is null || header.Reference != d.Reference)
            {
                return true; // an answer to nothing: a CPU ignores it
            }
            var p = header.Parameters;
            if (header.ErrorClass != 0 || header.ErrorCode != 0 || p.IsEmpty)
            {
                _download = null; // the client gave up
                return true;
            }
            if (d.Ending)
            {
                _download = null;
                _passive = (d.Type, d.Number, d.Image.AsSpan(0, d.Received).ToArray());
                Interlocked.Increment(ref _plc._downloads);
                return true;
            }
            // | 1B | 01 more / 00 last |, data | length (2) | 00 FB | block bytes |
            var data = header.Data;
            if (p[0] != S7Functions.DownloadBlock || p.Length < 2 || data.Length < 4)
            {
                _download = null;
                return true;
            }
            int slice = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(data), data.Length - 4);
            slice = Math.Min(slice, d.Image.Length - d.Received);
            data.Slice(4, slice).CopyTo(d.Image.AsSpan(d.Received));
            d.Received += slice;
            bool more = p[1] != 0 && d.Received < d.Image.Length;
            return SendDownloadJob(more ? S7Functions.DownloadBlock : S7Functions.DownloadEnded);
        }
    }
}
