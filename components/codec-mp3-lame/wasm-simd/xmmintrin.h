/*
 * The SSE intrinsics LAME's vector routines use (libmp3lame/vector/xmm_quantize_sub.c:
 * init_xrpow_core_sse and fht_SSE2), written with WebAssembly's 128-bit SIMD. Only the wasm
 * build of the mp3 plugin sees this header (scripts/wasm32-clang puts its directory on the
 * include path); with it, LAME's configure finds working SSE intrinsics and, with
 * MIN_ARCH_SSE, uses those two routines instead of their scalar C versions (issue 13).
 * Each function has SSE's semantics lane for lane, including which operand _mm_max_ps
 * returns for equal or NaN lanes.
 */
#ifndef MP3EDGE_WASM_XMMINTRIN_H
#define MP3EDGE_WASM_XMMINTRIN_H

#ifndef __wasm_simd128__
#error "this xmmintrin.h is for wasm32 with -msimd128 only"
#endif

#include <wasm_simd128.h>

typedef float __m128 __attribute__((__vector_size__(16), __aligned__(16)));

#define MP3EDGE_XMM_INLINE static __inline__ __attribute__((__always_inline__, __nodebug__))

MP3EDGE_XMM_INLINE __m128 _mm_set_ps1(float x) { return (__m128)wasm_f32x4_splat(x); }
MP3EDGE_XMM_INLINE __m128 _mm_setr_ps(float a, float b, float c, float d) { return (__m128)wasm_f32x4_make(a, b, c, d); }
MP3EDGE_XMM_INLINE __m128 _mm_loadu_ps(const float *p) { return (__m128)wasm_v128_load(p); }
MP3EDGE_XMM_INLINE void _mm_storeu_ps(float *p, __m128 a) { wasm_v128_store(p, (v128_t)a); }

MP3EDGE_XMM_INLINE __m128 _mm_add_ps(__m128 a, __m128 b) { return (__m128)wasm_f32x4_add((v128_t)a, (v128_t)b); }
MP3EDGE_XMM_INLINE __m128 _mm_sub_ps(__m128 a, __m128 b) { return (__m128)wasm_f32x4_sub((v128_t)a, (v128_t)b); }
MP3EDGE_XMM_INLINE __m128 _mm_mul_ps(__m128 a, __m128 b) { return (__m128)wasm_f32x4_mul((v128_t)a, (v128_t)b); }
MP3EDGE_XMM_INLINE __m128 _mm_sqrt_ps(__m128 a) { return (__m128)wasm_f32x4_sqrt((v128_t)a); }
/* MAXPS: a > b ? a : b per lane (b when they are equal or either is NaN); pmax(b, a) is
 * b < a ? a : b, the same. */
MP3EDGE_XMM_INLINE __m128 _mm_max_ps(__m128 a, __m128 b) { return (__m128)wasm_f32x4_pmax((v128_t)b, (v128_t)a); }
MP3EDGE_XMM_INLINE __m128 _mm_and_ps(__m128 a, __m128 b) { return (__m128)wasm_v128_and((v128_t)a, (v128_t)b); }
MP3EDGE_XMM_INLINE __m128 _mm_xor_ps(__m128 a, __m128 b) { return (__m128)wasm_v128_xor((v128_t)a, (v128_t)b); }

#define _MM_SHUFFLE(z, y, x, w) (((z) << 6) | ((y) << 4) | ((x) << 2) | (w))
/* SHUFPS: the two low lanes from a, the two high ones from b, each picked by two bits of imm. */
#define _mm_shuffle_ps(a, b, imm)                                                              \
    ((__m128)wasm_i32x4_shuffle((v128_t)(a), (v128_t)(b), (imm) & 3, ((imm) >> 2) & 3,        \
                                (((imm) >> 4) & 3) + 4, (((imm) >> 6) & 3) + 4))

/* Cache hints and store fences mean nothing to a single-threaded wasm instance. */
#define _MM_HINT_T0 3
#define _mm_prefetch(p, hint) ((void)(p), (void)(hint))
MP3EDGE_XMM_INLINE void _mm_sfence(void) {}

#endif
