/* The component glue: implements the `mp3edge:codec/encoder` export declared by the bindings
 * that `wit-bindgen c` generated from wit/codec/codec.wit (bindings/codec_plugin.{c,h}), on top
 * of the AIFF core (aiff.c).
 *
 * Ownership, as wit-bindgen's C bindings define it: arguments (the config, PCM lists) belong to
 * the callee, which frees them; results are malloc'ed here and freed by the generated
 * post-return functions after the host has copied them. The `session` resource is a struct of
 * ours: `…_session_new` hands it to the host, which calls `…_session_destructor` when dropped. */
#include <stdlib.h>
#include <string.h>

#include "aiff.h"
#include "bindings/codec_plugin.h"

struct exports_mp3edge_codec_encoder_session_t {
  aiff_encoder enc;
  int finished;
};

static void set_err(codec_plugin_string_t *err, const char *message) {
  codec_plugin_string_dup(err, message);
}

/* A malloc'ed copy of a constant array, as a WIT list result. */
static void *copy(const void *src, size_t bytes) {
  void *p = malloc(bytes);
  if (p) memcpy(p, src, bytes);
  return p;
}

void exports_mp3edge_codec_encoder_info(exports_mp3edge_codec_encoder_codec_info_t *ret) {
  static const uint8_t bit_depths[] = {16, 24};
  memset(ret, 0, sizeof *ret);
  codec_plugin_string_dup(&ret->name, "aiff-c");
  codec_plugin_string_dup(&ret->extension, "aiff");
  codec_plugin_string_dup(&ret->content_type, "audio/aiff");
  ret->max_channels = AIFF_MAX_CHANNELS; /* sample rates: empty list, any */
  ret->bit_depths.ptr = copy(bit_depths, sizeof bit_depths);
  ret->bit_depths.len = ret->bit_depths.ptr ? sizeof bit_depths : 0;
  ret->vbr = false;
  ret->cover = false;
}

static aiff_text text(const codec_plugin_option_string_t *s) {
  aiff_text t = {NULL, 0};
  if (s->is_some) {
    t.ptr = s->val.ptr;
    t.len = s->val.len;
  }
  return t;
}

bool exports_mp3edge_codec_encoder_static_session_start(exports_mp3edge_codec_encoder_encoder_config_t *config,
                                                         exports_mp3edge_codec_encoder_own_session_t *ret,
                                                         codec_plugin_string_t *err) {
  aiff_tags tags = {
      text(&config->tags.title), text(&config->tags.artist), text(&config->tags.album), text(&config->tags.year),
      text(&config->tags.comment), text(&config->tags.genre), text(&config->tags.track),
  };
  exports_mp3edge_codec_encoder_session_t *session = calloc(1, sizeof *session);
  const char *failure = session ? NULL : "aiff: out of memory";
  if (!failure)
    failure = aiff_start(&session->enc, config->input.sample_rate, config->input.channels, config->bits_per_sample, &tags);
  exports_mp3edge_codec_encoder_encoder_config_free(config);
  if (failure) {
    free(session);
    set_err(err, failure);
    return false;
  }
  *ret = exports_mp3edge_codec_encoder_session_new(session);
  return true;
}

/* The common end of encode and encode-wide: the output as the result, or the error. */
static bool output(const char *failure, aiff_buf *out, codec_plugin_list_u8_t *ret, codec_plugin_string_t *err) {
  if (failure) {
    free(out->data);
    set_err(err, failure);
    return false;
  }
  ret->ptr = out->data;
  ret->len = out->len;
  return true;
}

bool exports_mp3edge_codec_encoder_method_session_encode(exports_mp3edge_codec_encoder_borrow_session_t self,
                                                          codec_plugin_list_s16_t *pcm, codec_plugin_list_u8_t *ret,
                                                          codec_plugin_string_t *err) {
  aiff_buf out = {0};
  const char *failure = self->finished ? "aiff: session already finished" : aiff_encode16(&self->enc, pcm->ptr, pcm->len, &out);
  codec_plugin_list_s16_free(pcm);
  return output(failure, &out, ret, err);
}

bool exports_mp3edge_codec_encoder_method_session_encode_wide(exports_mp3edge_codec_encoder_borrow_session_t self,
                                                               codec_plugin_list_s32_t *pcm, codec_plugin_list_u8_t *ret,
                                                               codec_plugin_string_t *err) {
  aiff_buf out = {0};
  const char *failure = self->finished ? "aiff: session already finished" : aiff_encode24(&self->enc, pcm->ptr, pcm->len, &out);
  codec_plugin_list_s32_free(pcm);
  return output(failure, &out, ret, err);
}

bool exports_mp3edge_codec_encoder_method_session_finish(exports_mp3edge_codec_encoder_borrow_session_t self,
                                                          exports_mp3edge_codec_encoder_finished_t *ret,
                                                          codec_plugin_string_t *err) {
  if (self->finished) {
    set_err(err, "aiff: session already finished");
    return false;
  }
  self->finished = 1;
  aiff_buf tail = {0}, patch = {0};
  const char *failure = aiff_finish(&self->enc, &tail, &patch);
  if (failure) {
    free(tail.data);
    free(patch.data);
    set_err(err, failure);
    return false;
  }
  ret->tail.ptr = tail.data;
  ret->tail.len = tail.len;
  ret->patch.is_some = true;
  ret->patch.val.offset = 0;
  ret->patch.val.bytes.ptr = patch.data;
  ret->patch.val.bytes.len = patch.len;
  return true;
}

void exports_mp3edge_codec_encoder_session_destructor(exports_mp3edge_codec_encoder_session_t *rep) {
  aiff_free(&rep->enc);
  free(rep);
}

/* The generated bindings pull in the `codec_plugin_component_type.o` that `wit-bindgen c` can
 * write next to them, through this symbol. That object only carries the world's type; here
 * wasm-component-ld reads the type from wit/codec/codec.wit itself (`--component-type`, see the
 * Makefile), so no binary object is kept in the repository and this stands in for it. */
void __component_type_object_force_link_codec_plugin(void) {}
