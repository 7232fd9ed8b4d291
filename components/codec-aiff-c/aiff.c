/* The AIFF encoder core (see aiff.h). Layout written:
 *
 *   FORM <size> AIFF
 *     COMM  channels, sample frames, sample size, rate (80-bit extended float)
 *     NAME / AUTH / ANNO   title, artist, comment: AIFF's own text chunks
 *     ID3   an ID3v2.4 tag with every tag (album, date, genre, track have no AIFF chunk)
 *     SSND  offset 0, block size 0, big-endian samples (+ a pad byte if odd)
 *
 * The sizes are unknown while streaming: the header goes out with zeros and comes back whole,
 * with the real sizes, as the finish patch at offset 0. */
#include "aiff.h"

#include <stdlib.h>
#include <string.h>

/* AIFF sizes are 32-bit: FORM's size must stay below 4 GiB. */
#define AIFF_MAX_FORM_BYTES 0xFFFFFFFFull

static int buf_reserve(aiff_buf *b, size_t more) {
  if (b->len + more <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + more) cap *= 2;
  uint8_t *data = realloc(b->data, cap);
  if (!data) return 0;
  b->data = data;
  b->cap = cap;
  return 1;
}

static int put(aiff_buf *b, const void *bytes, size_t n) {
  if (!buf_reserve(b, n)) return 0;
  if (n) memcpy(b->data + b->len, bytes, n);
  b->len += n;
  return 1;
}

static int put_u8(aiff_buf *b, uint8_t v) { return put(b, &v, 1); }

static int put_be16(aiff_buf *b, uint16_t v) {
  uint8_t x[2] = {v >> 8, v};
  return put(b, x, 2);
}

static int put_be32(aiff_buf *b, uint32_t v) {
  uint8_t x[4] = {v >> 24, v >> 16, v >> 8, v};
  return put(b, x, 4);
}

static void set_be32(uint8_t *at, uint32_t v) {
  at[0] = v >> 24;
  at[1] = v >> 16;
  at[2] = v >> 8;
  at[3] = v;
}

/* The sample rate as an IEEE 754 80-bit extended float, as COMM stores it. */
static int put_extended(aiff_buf *b, uint32_t rate) {
  int shift = __builtin_clz(rate); /* rate > 0 */
  uint64_t mantissa = (uint64_t)rate << (32 + shift);
  if (!put_be16(b, (uint16_t)(16383 + 31 - shift))) return 0;
  return put_be32(b, mantissa >> 32) && put_be32(b, (uint32_t)mantissa);
}

static size_t clamp_len(const aiff_text *t) {
  return t->len > AIFF_MAX_TAG_BYTES ? AIFF_MAX_TAG_BYTES : t->len;
}

/* A text chunk (NAME, AUTH, ANNO) with its pad byte. */
static int put_text_chunk(aiff_buf *b, const char *id, const aiff_text *t) {
  if (!t->ptr || !t->len) return 1;
  size_t n = clamp_len(t);
  if (!put(b, id, 4) || !put_be32(b, (uint32_t)n) || !put(b, t->ptr, n)) return 0;
  return (n & 1) ? put_u8(b, 0) : 1;
}

static int put_syncsafe(aiff_buf *b, uint32_t v) {
  uint8_t x[4] = {(v >> 21) & 0x7F, (v >> 14) & 0x7F, (v >> 7) & 0x7F, v & 0x7F};
  return put(b, x, 4);
}

/* An ID3v2.4 text frame in UTF-8 (encoding 3). COMM adds a language and an empty description. */
static int put_id3_frame(aiff_buf *b, const char *id, const aiff_text *t) {
  if (!t->ptr || !t->len) return 1;
  size_t n = clamp_len(t);
  int comm = memcmp(id, "COMM", 4) == 0;
  uint32_t size = (uint32_t)(1 + (comm ? 4 : 0) + n);
  if (!put(b, id, 4) || !put_syncsafe(b, size) || !put_be16(b, 0) || !put_u8(b, 3)) return 0;
  if (comm && !put(b, "eng\0", 4)) return 0;
  return put(b, t->ptr, n);
}

static int put_id3_chunk(aiff_buf *b, const aiff_tags *tags) {
  static const char encoder[] = "mp3edge codec-aiff-c";
  aiff_text enc = {(const uint8_t *)encoder, sizeof encoder - 1};
  aiff_buf frames = {0};
  int ok = put_id3_frame(&frames, "TIT2", &tags->title) && put_id3_frame(&frames, "TPE1", &tags->artist) &&
           put_id3_frame(&frames, "TALB", &tags->album) && put_id3_frame(&frames, "TDRC", &tags->year) &&
           put_id3_frame(&frames, "TCON", &tags->genre) && put_id3_frame(&frames, "TRCK", &tags->track) &&
           put_id3_frame(&frames, "COMM", &tags->comment) && put_id3_frame(&frames, "TSSE", &enc);
  if (ok) {
    uint32_t tag_len = 10 + (uint32_t)frames.len;
    ok = put(b, "ID3 ", 4) && put_be32(b, tag_len) && put(b, "ID3\x04\x00\x00", 6) &&
         put_syncsafe(b, (uint32_t)frames.len) && put(b, frames.data, frames.len) && ((tag_len & 1) ? put_u8(b, 0) : 1);
  }
  free(frames.data);
  return ok;
}

const char *aiff_start(aiff_encoder *enc, uint32_t sample_rate, uint8_t channels, uint8_t bits, const aiff_tags *tags) {
  memset(enc, 0, sizeof *enc);
  if (sample_rate == 0) return "aiff: sample rate 0 Hz";
  if (channels < 1 || channels > AIFF_MAX_CHANNELS) return "aiff: only mono and stereo are supported";
  if (bits != 16 && bits != 24) return "aiff: only 16- and 24-bit samples are supported";
  enc->sample_rate = sample_rate;
  enc->channels = channels;
  enc->bits = bits;
  aiff_buf *h = &enc->header;
  int ok = put(h, "FORM", 4) && put_be32(h, 0) && put(h, "AIFF", 4) && put(h, "COMM", 4) && put_be32(h, 18) &&
           put_be16(h, channels);
  enc->comm_frames_at = h->len;
  ok = ok && put_be32(h, 0) && put_be16(h, bits) && put_extended(h, sample_rate) &&
       put_text_chunk(h, "NAME", &tags->title) && put_text_chunk(h, "AUTH", &tags->artist) &&
       put_text_chunk(h, "ANNO", &tags->comment) && put_id3_chunk(h, tags) && put(h, "SSND", 4);
  enc->ssnd_size_at = h->len;
  ok = ok && put_be32(h, 8) && put_be32(h, 0) && put_be32(h, 0);
  if (!ok) {
    aiff_free(enc);
    return "aiff: out of memory";
  }
  return NULL;
}

/* Bytes of sample data once `more` frames are added; NULL if it would break the 4 GiB limit. */
static const char *check_room(const aiff_encoder *enc, size_t samples) {
  if (samples % enc->channels) return "aiff: the samples do not divide into the channels";
  uint64_t frames = enc->frames + samples / enc->channels;
  uint64_t data = frames * enc->channels * (enc->bits / 8);
  if (enc->header.len + data + 1 > AIFF_MAX_FORM_BYTES) return "aiff: output would exceed AIFF's 4 GiB limit";
  return NULL;
}

static int take_header(aiff_encoder *enc, aiff_buf *out) {
  if (enc->header_sent) return 1;
  enc->header_sent = 1;
  return put(out, enc->header.data, enc->header.len);
}

const char *aiff_encode16(aiff_encoder *enc, const int16_t *pcm, size_t n, aiff_buf *out) {
  if (enc->bits != 16) return "aiff: this session takes 24-bit samples (encode-wide)";
  const char *err = check_room(enc, n);
  if (err) return err;
  if (!take_header(enc, out) || !buf_reserve(out, n * 2)) return "aiff: out of memory";
  uint8_t *p = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    uint16_t s = (uint16_t)pcm[i];
    *p++ = s >> 8;
    *p++ = s;
  }
  out->len += n * 2;
  enc->frames += n / enc->channels;
  return NULL;
}

const char *aiff_encode24(aiff_encoder *enc, const int32_t *pcm, size_t n, aiff_buf *out) {
  if (enc->bits != 24) return "aiff: this session takes 16-bit samples (encode)";
  const char *err = check_room(enc, n);
  if (err) return err;
  for (size_t i = 0; i < n; i++)
    if (pcm[i] < -8388608 || pcm[i] > 8388607) return "aiff: a sample is outside the 24-bit range";
  if (!take_header(enc, out) || !buf_reserve(out, n * 3)) return "aiff: out of memory";
  uint8_t *p = out->data + out->len;
  for (size_t i = 0; i < n; i++) {
    uint32_t s = (uint32_t)pcm[i];
    *p++ = s >> 16;
    *p++ = s >> 8;
    *p++ = s;
  }
  out->len += n * 3;
  enc->frames += n / enc->channels;
  return NULL;
}

const char *aiff_finish(aiff_encoder *enc, aiff_buf *tail, aiff_buf *patch) {
  if (!take_header(enc, tail)) return "aiff: out of memory";
  uint64_t data = enc->frames * enc->channels * (enc->bits / 8);
  int pad = data & 1;
  if (pad && !put_u8(tail, 0)) return "aiff: out of memory";
  uint8_t *h = enc->header.data;
  set_be32(h + 4, (uint32_t)(enc->header.len - 8 + data + pad));
  set_be32(h + enc->comm_frames_at, (uint32_t)enc->frames);
  set_be32(h + enc->ssnd_size_at, (uint32_t)(8 + data));
  if (!put(patch, h, enc->header.len)) return "aiff: out of memory";
  return NULL;
}

void aiff_free(aiff_encoder *enc) {
  free(enc->header.data);
  enc->header = (aiff_buf){0};
}
