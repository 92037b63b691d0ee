# Emulates attn_decode_cx8's 8-bit tile-loop shared-memory reads (old: per-tile offsets + selects; new: hoisted
# offsets, rows r + 8 as + 8 * ACL_RB, byte-permute selectors swapped where odd) for every lane, HD 32 / 64 / 128.
import random
def byte_perm(a, b, s):
    bs = list(a.to_bytes(4, 'little')) + list(b.to_bytes(4, 'little'))
    return int.from_bytes(bytes(bs[(s >> (4 * i)) & 7] for i in range(4)), 'little')
for HD in (32, 64, 128):
    RB = HD; CH = RB // 16; TB = 16 * RB; KT = HD // 16; DL = HD // 8; NWD = DL // 4
    def swk(r, c):
        return (c ^ ((r & 3) << 1)) if CH >= 8 else (c ^ (((r >> 1) & 1) << 1)) if CH == 4 else c
    def swq(r, c):
        return (c ^ (((r >> 2) & 1) << 1)) if CH == 4 else c
    sm = bytes(random.getrandbits(8) for _ in range(2 * TB))
    def ld(a, n):  # n 32-bit words at byte address a
        assert a % 4 == 0 and a + 4 * n <= len(sm)
        return [int.from_bytes(sm[a + 4 * i:a + 4 * i + 4], 'little') for i in range(n)]
    bad = 0
    for lane in range(32):
        g, t = lane >> 2, lane & 3; odd = t & 1
        # K
        kof = [(g + 8 * h) * RB + (8 * t & 15) for h in range(2)]
        ka = [g * RB + swk(g, (32 * S + 8 * t) >> 4) * 16 + (8 * t & 15) for S in range(KT // 2)]
        for S in range(KT // 2):
            c = (32 * S + 8 * t) >> 4
            old = (ld(kof[0] + swk(g, c) * 16, 2), ld(kof[1] + swk(g + 8, c) * 16, 2))
            new = (ld(ka[S], 2), ld(ka[S] + 8 * RB, 2))
            bad += old != new
        # V
        e = DL * g
        vof = []
        for h in range(2):
            r0, r1 = 2 * t + 8 * h + odd, 2 * t + 8 * h + 1 - odd
            vof.append((TB + r0 * RB + swq(r0, e >> 4) * 16 + (e & 15), TB + r1 * RB + swq(r1, e >> 4) * 16 + (e & 15)))
        r0, r1 = 2 * t + odd, 2 * t + 1 - odd
        vo = (TB + r0 * RB + swq(r0, e >> 4) * 16 + (e & 15), TB + r1 * RB + swq(r1, e >> 4) * 16 + (e & 15))
        vsel = (0x5140 ^ 0x4444 if odd else 0x5140, 0x7362 ^ 0x4444 if odd else 0x7362)
        for h in range(2):
            x, y = ld(vof[h][0], NWD), ld(vof[h][1], NWD)
            va = [y[w] if odd else x[w] for w in range(NWD)]; vb = [x[w] if odd else y[w] for w in range(NWD)]
            va2, vb2 = ld(vo[0] + h * 8 * RB, NWD), ld(vo[1] + h * 8 * RB, NWD)
            for s in range(KT):
                sel = 0x7362 if s & 1 else 0x5140
                o = byte_perm(va[s >> 1], vb[s >> 1], sel)
                n = byte_perm(va2[s >> 1], vb2[s >> 1], vsel[s & 1])
                bad += o != n
    print(f"HD {HD}: mismatches {bad}")
