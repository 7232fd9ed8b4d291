/* The AIFF encoder core: plain C with no WIT types, so it is tested natively (test_aiff.c) and
 * wrapped for the component by plugin.c. It owns the AIFF layout: FORM/AIFF, COMM, the tag
 * chunks (NAME, AUTH, ANNO and an ID3 chunk for what AIFF has no chunk for), and SSND with
 * big-endian samples. */
#ifndef MP3EDGE_AIFF_H
#define MP3EDGE_AIFF_H

#include <stddef.h>
#include <stdint.h>

/* Most channels: AIFF's order beyond stereo is not WAV's, so more are downmixed by the host. */
#define AIFF_MAX_CHANNELS 2
/* Longest tag value kept, in bytes, so the header (the finish patch) stays far below 16 KiB. */
#define AIFF_MAX_TAG_BYTES 1000

/* A growable byte buffer; the caller owns `data` (free()). */
typedef struct {
  uint8_t *data;
  size_t len, cap;
} aiff_buf;

/* Tags as NUL-free byte strings with lengths; a NULL `ptr` is absent. */
typedef struct {
  const uint8_t *ptr;
  size_t len;
} aiff_text;

typedef struct {
  aiff_text title, artist, album, year, comment, genre, track;
} aiff_tags;

typedef struct {
  uint32_t sample_rate;
  uint16_t channels;
  uint16_t bits; /* 16 or 24 */
  aiff_buf header; /* FORM … SSND header, handed out with the first output */
  int header_sent;
  size_t comm_frames_at; /* offset of COMM's numSampleFrames */
  size_t ssnd_size_at;   /* offset of SSND's size */
  uint64_t frames;       /* sample frames written */
} aiff_encoder;

/* Validates the layout and builds the header; on error returns a static message. */
const char *aiff_start(aiff_encoder *enc, uint32_t sample_rate, uint8_t channels, uint8_t bits, const aiff_tags *tags);
/* Appends interleaved 16-bit samples (a 16-bit session) as big-endian to `out`. */
const char *aiff_encode16(aiff_encoder *enc, const int16_t *pcm, size_t n, aiff_buf *out);
/* Appends interleaved 24-bit samples (a 24-bit session) as big-endian to `out`. */
const char *aiff_encode24(aiff_encoder *enc, const int32_t *pcm, size_t n, aiff_buf *out);
/* The tail (header if never sent, pad byte) into `tail`, and the final header into `patch`
 * (written at offset 0). */
const char *aiff_finish(aiff_encoder *enc, aiff_buf *tail, aiff_buf *patch);
void aiff_free(aiff_encoder *enc);

#endif
