package store

import (
	"context"

	"github.com/hasession/hasession/internal/testhook"
)

// The internals the container-backed tests read, which live outside this package (see
// internal/testhook). Nothing in the product calls them.
func init() {
	testhook.StoreInternals = func(v any) testhook.Internals {
		st := v.(*Store)
		return testhook.Internals{
			Key:       st.key,
			Client:    st.rdb,
			IdleMs:    st.idleMs,
			LifeMs:    st.lifeMs,
			CodecName: st.o.codec.Name(),
			RunSave: func(ctx context.Context, key string, args []any) (testhook.SaveResult, error) {
				r, err := st.runSave(ctx, key, args)
				return testhook.SaveResult{Version: r.version, Now: r.now, Deadline: r.deadline, Created: r.created}, err
			},
			HGetAll:   st.hgetall,
			ReplyHint: &st.replyHint,
		}
	}
	testhook.AppendChanges = func(s any, args []any) []any { return s.(*Session).appendChanges(args) }
	testhook.NewSaveID = newSaveID
	testhook.SetLoadTouchHook = func(f func(key string)) { loadTouchHook = f }
	testhook.SetDestroyHopHook = func(f func()) { destroyHopHook = f }
	testhook.SetRotateForwardHook = func(f func()) { rotateForwardHook = f }
	testhook.MaxHops = maxHops
	testhook.FieldVersion, testhook.FieldTouched, testhook.FieldSaveID = fVersion, fTouched, fSaveID
	testhook.FieldCreated, testhook.FieldDeadline, testhook.FieldIdle, testhook.FieldPersist = fCreated, fDeadline, fIdle, fPersist
	testhook.ForwardScriptHash = forwardScript.Hash()
	testhook.SaveScriptHash = saveScript.Hash()
	testhook.DestroyScriptHash = destroyScript.Hash()
}
