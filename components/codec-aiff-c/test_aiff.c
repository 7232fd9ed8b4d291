/* Native tests of the AIFF core (make test): byte layout, the patch with the final sizes,
 * big-endian samples, the pad byte, tags and refusals. Undefined behaviour traps (-fsanitize-trap). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aiff.h"

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

static const uint8_t *find(const aiff_buf *b, const char *id) {
  for (size_t i = 12; i + 8 <= b->len;) {
    if (!memcmp(b->data + i, id, 4)) return b->data + i;
    uint32_t n = be32(b->data + i + 4);
    i += 8 + n + (n & 1);
  }
  return NULL;
}

static aiff_text t(const char *s) { return (aiff_text){(const uint8_t *)s, strlen(s)}; }

/* Streams `frames` frames in two calls, applies the patch, returns the file. */
static aiff_buf encode(uint32_t rate, uint8_t channels, uint8_t bits, size_t frames, const aiff_tags *tags) {
  aiff_encoder enc;
  assert(!aiff_start(&enc, rate, channels, bits, tags));
  aiff_buf out = {0}, tail = {0}, patch = {0};
  size_t n = frames * channels, half = (frames / 2) * channels;
  if (bits == 16) {
    int16_t *pcm = malloc(n * 2 + 2);
    for (size_t i = 0; i < n; i++) pcm[i] = (int16_t)(i * 37 - 20000);
    assert(!aiff_encode16(&enc, pcm, half, &out));
    assert(!aiff_encode16(&enc, pcm + half, n - half, &out));
    free(pcm);
  } else {
    int32_t *pcm = malloc(n * 4 + 4);
    for (size_t i = 0; i < n; i++) pcm[i] = (int32_t)(i * 4099) % 8388608 - 4000000;
    assert(!aiff_encode24(&enc, pcm, half, &out));
    assert(!aiff_encode24(&enc, pcm + half, n - half, &out));
    free(pcm);
  }
  assert(!aiff_finish(&enc, &tail, &patch));
  assert(patch.len < 16 * 1024);
  out.data = realloc(out.data, out.len + tail.len + 1);
  if (tail.len) memcpy(out.data + out.len, tail.data, tail.len);
  out.len += tail.len;
  assert(out.len >= patch.len);
  memcpy(out.data, patch.data, patch.len);
  free(tail.data);
  free(patch.data);
  aiff_free(&enc);
  return out;
}

static void layout_and_sizes(void) {
  aiff_tags none = {0};
  aiff_buf f = encode(44100, 2, 16, 1001, &none);
  assert(!memcmp(f.data, "FORM", 4) && !memcmp(f.data + 8, "AIFF", 4));
  assert(be32(f.data + 4) == f.len - 8);
  const uint8_t *comm = find(&f, "COMM");
  assert(comm && be32(comm + 4) == 18);
  assert(comm[8] == 0 && comm[9] == 2);
  assert(be32(comm + 10) == 1001);
  assert(comm[14] == 0 && comm[15] == 16);
  /* 44100 Hz as an 80-bit extended float: 0x400E AC44 0000 0000 0000. */
  static const uint8_t rate[10] = {0x40, 0x0E, 0xAC, 0x44, 0, 0, 0, 0, 0, 0};
  assert(!memcmp(comm + 16, rate, 10));
  const uint8_t *ssnd = find(&f, "SSND");
  assert(ssnd && be32(ssnd + 4) == 8 + 1001 * 4);
  assert(be32(ssnd + 8) == 0 && be32(ssnd + 12) == 0);
  /* First sample, big-endian: -20000 = 0xB1E0. */
  assert(ssnd[16] == 0xB1 && ssnd[17] == 0xE0);
  assert(ssnd + 16 + 1001 * 4 == f.data + f.len);
  free(f.data);
}

static void odd_data_gets_a_pad_byte(void) {
  aiff_tags none = {0};
  aiff_buf f = encode(8000, 1, 24, 7, &none);
  const uint8_t *ssnd = find(&f, "SSND");
  assert(be32(ssnd + 4) == 8 + 21);
  assert(ssnd + 16 + 21 + 1 == f.data + f.len);
  assert(be32(f.data + 4) == f.len - 8);
  const uint8_t *comm = find(&f, "COMM");
  assert(comm[15] == 24 && be32(comm + 10) == 7);
  /* -4000000 = 0xC2F700 */
  assert(ssnd[16] == 0xC2 && ssnd[17] == 0xF7 && ssnd[18] == 0x00);
  free(f.data);
}

static void tags_as_text_chunks_and_id3(void) {
  aiff_tags tags = {t("Title"), t("Artist"), t("Album"), t("2024"), t("odd"), t("Jazz"), t("3/12")};
  aiff_buf f = encode(48000, 2, 16, 10, &tags);
  const uint8_t *name = find(&f, "NAME");
  assert(name && be32(name + 4) == 5 && !memcmp(name + 8, "Title", 5));
  const uint8_t *auth = find(&f, "AUTH");
  assert(auth && !memcmp(auth + 8, "Artist", 6));
  const uint8_t *anno = find(&f, "ANNO");
  assert(anno && be32(anno + 4) == 3 && !memcmp(anno + 8, "odd", 3));
  const uint8_t *id3 = find(&f, "ID3 ");
  assert(id3 && !memcmp(id3 + 8, "ID3\x04", 4));
  uint32_t n = be32(id3 + 4);
  const uint8_t *end = id3 + 8 + n;
  const char *want[] = {"TIT2", "TPE1", "TALB", "TDRC", "TCON", "TRCK", "COMM", "TSSE"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
    int found = 0;
    for (const uint8_t *p = id3 + 18; p + 4 <= end; p++) found |= !memcmp(p, want[i], 4);
    assert(found);
  }
  assert(find(&f, "SSND"));
  free(f.data);
}

static void long_tags_are_cut(void) {
  char *big = malloc(5000);
  memset(big, 'x', 5000);
  aiff_tags tags = {{(const uint8_t *)big, 5000}, {(const uint8_t *)big, 5000}, {(const uint8_t *)big, 5000},
                    {(const uint8_t *)big, 5000}, {(const uint8_t *)big, 5000}, {(const uint8_t *)big, 5000},
                    {(const uint8_t *)big, 5000}};
  aiff_buf f = encode(44100, 1, 16, 3, &tags);
  assert(be32(find(&f, "NAME") + 4) == AIFF_MAX_TAG_BYTES);
  free(f.data);
  free(big);
}

static void refusals(void) {
  aiff_tags none = {0};
  aiff_encoder enc;
  assert(aiff_start(&enc, 0, 2, 16, &none));
  assert(aiff_start(&enc, 44100, 0, 16, &none));
  assert(aiff_start(&enc, 44100, 3, 16, &none));
  assert(aiff_start(&enc, 44100, 2, 20, &none));
  assert(!aiff_start(&enc, 44100, 2, 16, &none));
  aiff_buf out = {0};
  int16_t s[3] = {1, 2, 3};
  int32_t w[2] = {1, 2};
  assert(strstr(aiff_encode16(&enc, s, 3, &out), "channels"));
  assert(strstr(aiff_encode24(&enc, w, 2, &out), "16-bit"));
  aiff_free(&enc);
  assert(!aiff_start(&enc, 44100, 1, 24, &none));
  int32_t big[1] = {8388608};
  assert(strstr(aiff_encode24(&enc, big, 1, &out), "24-bit range"));
  assert(strstr(aiff_encode16(&enc, s, 1, &out), "24-bit"));
  aiff_free(&enc);
  free(out.data);
}

static void empty_stream(void) {
  aiff_tags none = {0};
  aiff_encoder enc;
  assert(!aiff_start(&enc, 22050, 1, 16, &none));
  aiff_buf tail = {0}, patch = {0};
  assert(!aiff_finish(&enc, &tail, &patch));
  assert(tail.len == patch.len && be32(patch.data + 4) == patch.len - 8);
  free(tail.data);
  free(patch.data);
  aiff_free(&enc);
}

int main(void) {
  layout_and_sizes();
  odd_data_gets_a_pad_byte();
  tags_as_text_chunks_and_id3();
  long_tags_are_cut();
  refusals();
  empty_stream();
  puts("codec-aiff-c: all tests passed");
  return 0;
}
