// Progressive enhancement of a provider portal submission page: while its evaluation waits or
// runs, check its status every few seconds and reload the page when it changes, so the user
// need not press "Check progress". Without JavaScript that button does the same.
const progress = document.getElementById('portal-progress')

if (progress) {
  const url = progress.dataset.statusUrl
  const announce = document.getElementById('portal-announce')
  let last = progress.dataset.status
  const check = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      if (!response.ok) return
      const state = await response.json()
      if (state.status !== last || state.finished) {
        last = state.status
        if (announce) announce.textContent = state.finished ? 'The evaluation has finished. Loading the results.' : 'The evaluation has started.'
        window.location.reload()
        return
      }
      const stage = document.getElementById('portal-stage')
      if (stage && state.stage && state.status === 'running') stage.textContent = state.stage + '.'
    } catch (error) {
      // A dropped connection: try again at the next tick.
    }
    window.setTimeout(check, 3000)
  }
  window.setTimeout(check, 3000)
}
