// turn_queue.h - the endpoints that want another turn of the loop, served by
// one idle handle per environment (main thread or worker).
//
// An endpoint asks for a turn when it has work the descriptor will not wake
// it for: a result to report from the loop, a resumed reader's held bytes, a
// budget used up. An active idle handle runs on the loop's next iteration and
// keeps its poll phase from blocking meanwhile, which is what such work
// needs. Each endpoint had one of its own; one for the environment serves
// them all, so an idle connection holds no handle for it (with what held it,
// about 190 bytes of heap a connection, in processes that keep thousands).
//
// A turn serves the endpoints that were queued when it began, in the order
// they asked: one that asks again during the turn waits for the next, so a
// busy endpoint cannot keep the loop from the others. One that is removed
// (it closed, or is being destroyed) is never served, even if the turn that
// would have served it has begun. The handle keeps the loop alive only while
// a referenced endpoint waits, as each endpoint's own handle did.
#ifndef SCIF_NET_TURN_QUEUE_H
#define SCIF_NET_TURN_QUEUE_H

#include <napi.h>
#include <uv.h>

#include <cstddef>

namespace scifnet {

class TurnQueue {
  // A place in one of the queue's circular lists, whose heads are bare links.
  struct Link {
    Link* prev = nullptr;
    Link* next = nullptr;
  };

 public:
  // What the queue holds: an endpoint, queued while its link is in a list.
  class Entry : private Link {
   public:
    bool Queued() const { return next != nullptr; }

   protected:
    Entry() = default;
    ~Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    // Its turn; it has left the queue by then, and may ask for another.
    virtual void TakeTurn() = 0;

   private:
    friend class TurnQueue;
    bool holds_loop_ = false;  // it waits referenced: counted in holding_
  };

  // The environment's queue, made on first use; null when it cannot be, and
  // once the environment's teardown has begun.
  static TurnQueue* For(napi_env env);

  // Queues e for the next turn, unless it waits already; it keeps the loop
  // alive meanwhile if referenced.
  void Add(Entry* e, bool referenced);
  // Takes e out of the queue, if it is in it.
  void Remove(Entry* e);
  // Whether e, if it waits, keeps the loop alive (ref()/unref()).
  void SetReferenced(Entry* e, bool referenced);

 private:
  explicit TurnQueue(napi_env env);
  TurnQueue(const TurnQueue&) = delete;
  TurnQueue& operator=(const TurnQueue&) = delete;
  static void OnIdle(uv_idle_t* handle);
  static void Cleanup(void* arg);
  static bool Empty(const Link& head) { return head.next == &head; }
  void Serve();
  void Append(Entry* e);
  void Detach(Entry* e);
  void DetachAll(Link* head);
  void Hold(Entry* e, bool referenced);
  void SyncIdle();

  napi_env env_;
  uv_idle_t idle_;
  Link waiting_;  // for the next turn
  Link serving_;  // this turn's, while it runs
  size_t holding_ = 0;  // referenced entries in either list
  bool closed_ = false;
};

}  // namespace scifnet

#endif
