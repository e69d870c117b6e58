// turn_queue.cc - see turn_queue.h.
#include "turn_queue.h"

#include "addon.h"

namespace scifnet {

TurnQueue* TurnQueue::For(napi_env env) {
  AddonData* data = AddonData::Get(env);
  if (data->turns || data->turns_gone) return data->turns;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return nullptr;
  auto* self = new TurnQueue(env);
  if (uv_idle_init(loop, &self->idle_) != 0) {
    delete self;
    return nullptr;
  }
  self->idle_.data = self;
  // Referenced only while a referenced endpoint waits (Hold).
  uv_unref(reinterpret_cast<uv_handle_t*>(&self->idle_));
  if (napi_add_env_cleanup_hook(env, Cleanup, self) != napi_ok) {
    uv_close(reinterpret_cast<uv_handle_t*>(&self->idle_),
             [](uv_handle_t* h) { delete static_cast<TurnQueue*>(h->data); });
    return nullptr;
  }
  data->turns = self;
  return self;
}

TurnQueue::TurnQueue(napi_env env) : env_(env) {
  waiting_.prev = waiting_.next = &waiting_;
  serving_.prev = serving_.next = &serving_;
}

// The environment goes, before its endpoints are finalised: none waits any
// more (their destructors then find nothing to take out), none can ask again
// (For() says null), and the handle's close frees us.
void TurnQueue::Cleanup(void* arg) {
  auto* self = static_cast<TurnQueue*>(arg);
  self->closed_ = true;
  self->DetachAll(&self->waiting_);
  self->DetachAll(&self->serving_);
  AddonData* data = AddonData::Get(self->env_);
  data->turns = nullptr;
  data->turns_gone = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&self->idle_),
           [](uv_handle_t* h) { delete static_cast<TurnQueue*>(h->data); });
}

void TurnQueue::Add(Entry* e, bool referenced) {
  if (closed_ || e->Queued()) return;
  Append(e);
  Hold(e, referenced);
  SyncIdle();
}

void TurnQueue::Remove(Entry* e) {
  if (!e->Queued()) return;
  Detach(e);
  SyncIdle();
}

void TurnQueue::SetReferenced(Entry* e, bool referenced) {
  if (e->Queued()) Hold(e, referenced);
}

void TurnQueue::OnIdle(uv_idle_t* handle) { static_cast<TurnQueue*>(handle->data)->Serve(); }

void TurnQueue::Serve() {
  // This turn's entries move to serving_ whole: whatever asks from here on
  // lands in waiting_ and is the next turn's.
  if (Empty(waiting_)) {
    SyncIdle();
    return;
  }
  serving_.next = waiting_.next;
  serving_.prev = waiting_.prev;
  serving_.next->prev = &serving_;
  serving_.prev->next = &serving_;
  waiting_.prev = waiting_.next = &waiting_;
  SyncIdle();
  while (!closed_ && !Empty(serving_)) {
    if (!JsAlive(env_)) {
      // Nobody left to tell (addon.h); the environment's teardown closes them.
      DetachAll(&serving_);
      break;
    }
    auto* e = static_cast<Entry*>(serving_.next);
    Detach(e);
    Napi::HandleScope scope(Napi::Env{env_});
    e->TakeTurn();
  }
}

void TurnQueue::Append(Entry* e) {
  Link* link = e;
  link->prev = waiting_.prev;
  link->next = &waiting_;
  waiting_.prev->next = link;
  waiting_.prev = link;
}

// Out of whichever list e is in; its hold on the loop goes with it.
void TurnQueue::Detach(Entry* e) {
  Link* link = e;
  link->prev->next = link->next;
  link->next->prev = link->prev;
  link->prev = link->next = nullptr;
  Hold(e, false);
}

void TurnQueue::DetachAll(Link* head) {
  while (!Empty(*head)) Detach(static_cast<Entry*>(head->next));
}

// The handle is referenced while any entry that waits is: libuv then keeps
// the loop running for it, as it did for each referenced endpoint's handle.
void TurnQueue::Hold(Entry* e, bool referenced) {
  if (e->holds_loop_ == referenced) return;
  e->holds_loop_ = referenced;
  auto* handle = reinterpret_cast<uv_handle_t*>(&idle_);
  if (referenced && holding_++ == 0) uv_ref(handle);
  if (!referenced && --holding_ == 0) uv_unref(handle);
}

// The handle runs exactly while entries wait for the next turn: an active
// idle handle keeps the loop from blocking for events, referenced or not.
void TurnQueue::SyncIdle() {
  if (closed_) return;
  bool active = uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_)) != 0;
  if (Empty(waiting_) && active) {
    uv_idle_stop(&idle_);
  } else if (!Empty(waiting_) && !active) {
    // Fails only without a callback.
    (void)uv_idle_start(&idle_, OnIdle);
  }
}

}  // namespace scifnet
