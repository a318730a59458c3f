// ambiance: the one-tap phone app. Plain JS, no framework, no build step.
// It reads the rooms once, then follows them live through server-sent events (no polling).
'use strict';

const API = '/api/v1';
const TOKEN_KEY = 'ambiance.token';
const FEEDBACK_KEY = 'ambiance.feedback-done';
const RING = 2 * Math.PI * 54; // the progress ring's circumference (r = 54 in index.html)

const $ = (id) => document.getElementById(id);

const state = {
  rooms: [], // summaries from GET /rooms, in order
  routines: {}, // name -> routine
  reach: {}, // routine name -> promise of what it can be fitted to (GET /routines/{name}/fit)
  profiles: [],
  areas: [], // the body areas to work (GET /areas), for "where?" answers
  views: {}, // room name -> {view, at: performance.now() when it arrived}
  screen: 'home', // home | session | feedback | thanks
  focus: null, // the room the session screen shows
  ended: null, // {room, session}: the session the feedback is about
  sending: false, // this phone's feedback is on its way (so its own echo is not "already given")
  stageKey: null, // which stage's guidance is on screen
  today: { session: null, again: false }, // the session whose day's questions are on screen
  notToday: null, // {room, session, profile}: the session a stop sign ended
  health: null, // {name, before}: the profile whose health answers the dialog shows
};

// --- DOM ------------------------------------------------------------------------------

/** An element with properties (class, text, ...) and children; never innerHTML. */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'data') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

let toastTimer = null;
function toast(message) {
  const node = $('toast');
  node.textContent = message;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 5000);
}

// --- the token (the API may ask for one) -------------------------------------------------

let token = localStorage.getItem(TOKEN_KEY) || '';
let tokenAsked = null;

function tokenFromAddress() {
  const match = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (!match) return;
  token = decodeURIComponent(match[1]);
  localStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, '', location.pathname + location.search); // out of the address bar
}

/** Ask for the token with a small form; every caller waiting on a 401 shares one form. */
function askToken() {
  if (!tokenAsked) {
    tokenAsked = new Promise((resolve) => {
      const dialog = $('token-dialog');
      const input = $('token-input');
      input.value = '';
      dialog.addEventListener('close', () => {
        token = input.value.trim();
        if (token) localStorage.setItem(TOKEN_KEY, token);
        tokenAsked = null;
        resolve();
      }, { once: true });
      dialog.showModal();
    });
  }
  return tokenAsked;
}

class ApiError extends Error {
  constructor(status, message, error = {}) {
    super(message);
    this.status = status;
    this.code = error.code;
    this.detail = error.detail;
  }
}

/** fetch JSON from the API, with the token when known; on a 401 ask for it once and retry. */
async function api(path, { method = 'GET', body } = {}, retried = false) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && !retried) {
    await askToken();
    return api(path, { method, body }, true);
  }
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const message = data && data.error ? data.error.message : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, (data && data.error) || {});
  }
  return data;
}

/** Run a command; a failure is shown briefly (the stream shows what the room really does). */
async function command(path, options) {
  try {
    return await api(path, options);
  } catch (error) {
    toast(error.message);
    return null;
  }
}

// --- the live stream ------------------------------------------------------------------------

let source = null;
let restart = null;

function connect() {
  const params = new URLSearchParams();
  for (const room of state.rooms) params.append('room', room.name);
  // EventSource cannot send headers: the token goes in the query.
  if (token) params.set('access_token', token);
  source = new EventSource(`${API}/events?${params}`);
  source.addEventListener('room', (event) => onRoom(JSON.parse(event.data)));
  source.addEventListener('open', () => { $('offline').hidden = true; });
  source.addEventListener('error', () => {
    $('offline').hidden = false;
    // The browser reconnects by itself, unless the answer was an error (a 401, a 404):
    // then ask the API (which asks for the token if that was it) and start again.
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      clearTimeout(restart);
      restart = setTimeout(async () => {
        try { await api('/rooms'); } catch (error) { /* still down: try again */ }
        connect();
      }, 3000);
    }
  });
}

function onRoom(view) {
  const before = state.views[view.name] && state.views[view.name].view;
  state.views[view.name] = { view, at: performance.now() };
  const summary = state.rooms.find((room) => room.name === view.name);
  if (summary) summary.status = view.session ? view.session.status : 'idle';

  if (state.screen === 'session' && state.focus === view.name && !view.session) {
    const last = view.last_session;
    if (before && before.session && last && last.id === before.session.id && last.end_reason === 'not_today') {
      showNotToday(view.name, last, null); // a stop sign, on this phone or another
    } else if (before && before.session && last && last.id === before.session.id) {
      showFeedback(view.name, last);
    } else {
      show('home');
    }
  } else if (view.session && (state.screen === 'home'
      || (state.screen === 'thanks' && state.ended && state.ended.room === view.name)
      || (state.screen === 'not-today' && state.notToday && state.notToday.room === view.name))) {
    state.focus = view.name; // a session started (here or from elsewhere, a turn): follow it
    show('session');
  } else if (state.screen === 'feedback' && state.ended && state.ended.room === view.name && !state.sending) {
    // Another phone gave this session's feedback: it is taken once, so say so here.
    const last = view.last_session;
    if (last && last.id === state.ended.session.id && last.feedback_given) showGiven(last.feedback_given);
  }
  render();
}

// --- rendering ------------------------------------------------------------------------------

function show(screen) {
  state.screen = screen;
  for (const id of ['home', 'session', 'feedback', 'thanks', 'not-today']) $(id).hidden = id !== screen;
  window.scrollTo(0, 0);
  render();
}

function render() {
  if (state.screen === 'home') renderHome();
  else if (state.screen === 'session') renderSession();
  else if (state.screen === 'feedback') renderFeedbackRoom();
  else if (state.screen === 'thanks') renderTurn();
  tick();
}

function routineTitle(name) {
  const routine = state.routines[name];
  return (routine && routine.title) || name;
}

function stageTitle(routineName, stageName) {
  const routine = state.routines[routineName];
  const stage = routine && routine.stages.find((s) => s.name === stageName);
  return (stage && stage.title) || stageName;
}

function profileName(name) {
  const profile = state.profiles.find((p) => p.name === name);
  return (profile && profile.display_name) || name;
}

// --- how long? --------------------------------------------------------------------------

// Lengths people think in; each is offered when the routine can take it.
const LENGTHS = [10, 15, 20, 30, 45, 60, 75, 90];

function reachOf(name) {
  if (!state.reach[name]) {
    state.reach[name] = api(`/routines/${encodeURIComponent(name)}/fit`).catch(() => {
      delete state.reach[name]; // ask again next time
      return null;
    });
  }
  return state.reach[name];
}

/** The "How long?" choices for a routine: its own length, then the lengths it can take. */
async function fillLengths(select, routine) {
  select.replaceChildren(h('option', { value: '', text: 'As written' }));
  select.dataset.routine = routine;
  const reach = await reachOf(routine);
  if (!reach || select.dataset.routine !== routine) return; // another routine was chosen meanwhile
  const low = Math.ceil(reach.shortest);
  const high = Math.floor(reach.longest);
  const choices = LENGTHS.filter((m) => m >= low && m <= high && Math.abs(m - reach.own) > 1);
  select.replaceChildren(
    h('option', { value: '', text: `As written · ${Math.round(reach.own)} min` }),
    ...choices.map((m) => h('option', { value: String(m), text: `${m} min${m < reach.own ? ' (shorter)' : ' (longer)'}` })));
}

function buildHome() {
  const list = $('rooms');
  list.replaceChildren();
  $('home-empty').hidden = state.rooms.length > 0;
  $('home-empty').textContent = 'No rooms are configured.';
  const routines = Object.values(state.routines);
  for (const room of state.rooms) {
    const routine = h('select', { id: `routine-${room.name}`, 'aria-label': 'Routine' },
      routines.map((r) => h('option', { value: r.name, text: r.title || r.name, selected: r.name === room.routine })));
    const minutes = h('select', { id: `minutes-${room.name}`, class: 'minutes', 'aria-label': 'How long?' });
    routine.addEventListener('change', () => fillLengths(minutes, routine.value));
    fillLengths(minutes, routine.value);
    const profile = h('select', { id: `profile-${room.name}`, 'aria-label': 'For whom' },
      h('option', { value: '', text: 'No profile' }),
      state.profiles.map((p) => h('option', { value: p.name, text: p.display_name || p.name })));
    const health = healthButton(profile);
    const card = h('section', { class: 'room-card', data: { room: room.name } },
      h('h2', { text: room.title || room.name }),
      h('p', { class: 'status' }),
      h('div', { class: 'room-state' }),
      h('label', { class: 'field' }, 'Routine', routine),
      h('label', { class: 'field' }, 'For', profile),
      health,
      h('label', { class: 'field' }, 'How long?', minutes),
      h('button', { class: 'link rate', type: 'button', text: 'How was the last one? Tell us', hidden: true,
        onclick: () => {
          const view = state.views[room.name] && state.views[room.name].view;
          if (view && view.last_session) showFeedback(room.name, view.last_session);
        } }),
      h('button', { class: 'primary big spa', type: 'button', text: 'Spa mode',
        onclick: (event) => startSpa(room.name, routine.value, profile.value, event.currentTarget, { minutes: minutes.value }) }));
    list.append(card);
  }
}

function renderHome() {
  for (const card of document.querySelectorAll('.room-card')) {
    const entry = state.views[card.dataset.room];
    if (!entry) continue;
    const { view } = entry;
    const status = card.querySelector('.status');
    const spa = card.querySelector('.spa');
    if (view.session) {
      status.textContent = `${view.session.status === 'paused' ? 'Paused' : 'Running'}: ${view.session.stage.title}`;
      spa.textContent = 'Open the session';
    } else {
      status.textContent = view.health.status === 'ok' ? 'Ready when you are' : 'Ready, but a device does not answer';
      spa.textContent = 'Spa mode';
    }
    const last = view.last_session;
    card.querySelector('.rate').hidden = Boolean(view.session || !last || last.feedback_given
      || feedbackDone(last.id) || last.end_reason === 'not_today'); // nothing of it was done
    roomState(card.querySelector('.room-state'), view);
  }
}

async function startSpa(room, routine, profile, button, { minutes, follows, roomOnly } = {}) {
  const entry = state.views[room];
  if (entry && entry.view.session) {
    state.focus = room;
    show('session');
    return;
  }
  button.disabled = true;
  const body = { routine };
  if (profile) body.profile = profile;
  if (minutes) body.minutes = Number(minutes);
  if (follows) body.follows = follows; // taking turns: linked to the session before
  if (roomOnly) body.room_only = true; // the quiet room: the routine is the server's
  const view = await command(`/rooms/${encodeURIComponent(room)}/spa`, { method: 'POST', body });
  button.disabled = false;
  if (view) {
    if (!state.views[room] || !state.views[room].view.session) state.views[room] = { view, at: performance.now() };
    state.focus = room;
    show('session');
  }
}

/** Kelvin to an approximate sRGB colour (Tanner Helland's fit), dimmed by brightness. */
function lightColour(kelvin, brightness) {
  const t = (kelvin || 2700) / 100;
  let r; let g; let b;
  if (t <= 66) {
    r = 255;
    g = 99.47 * Math.log(t) - 161.12;
    b = t <= 19 ? 0 : 138.52 * Math.log(t - 10) - 305.04;
  } else {
    r = 329.7 * (t - 60) ** -0.1332;
    g = 288.12 * (t - 60) ** -0.0755;
    b = 255;
  }
  // Never bright white: even a full, cold light is drawn at three quarters.
  const level = 0.25 + 0.5 * Math.min(100, Math.max(0, brightness || 0)) / 100;
  const c = (v) => Math.round(Math.min(255, Math.max(0, v)) * level);
  return `rgb(${c(r)}, ${c(g)}, ${c(b)})`;
}

function roomState(container, view) {
  const lights = h('div', { class: 'lights' }, view.lights.lights.map((light) => {
    const bulb = h('span', { class: 'bulb' });
    let text = 'off';
    if (!light.reachable) text = 'not answering';
    else if (light.on) {
      const colour = lightColour(light.kelvin, light.brightness);
      bulb.style.setProperty('background-color', colour);
      bulb.style.setProperty('box-shadow', `0 0 ${6 + (light.brightness || 0) / 5}px ${colour}`);
      // Kelvin to the nearest hundred: mireds make 2400 K come back as 2398 K.
      text = `${Math.round(light.brightness || 0)} %${light.kelvin ? ` · ${Math.round(light.kelvin / 100) * 100} K` : ''}`;
    }
    return h('div', { class: 'light', data: { light: light.id } },
      bulb, h('span', { class: 'light-name', text: light.name }), h('span', { class: 'light-value', text }));
  }));
  const facts = h('ul', { class: 'facts' });
  if (view.lights.restoring) facts.append(h('li', { text: 'Putting the lights back as they were…' }));
  for (const phone of view.phones) {
    facts.append(h('li', { class: 'phone', text: `${phone.name}: ${phone.dnd ? 'do not disturb' : 'as usual'}` }));
  }
  if (view.music) {
    const wanted = view.music.desired;
    let text = 'Music: not playing';
    if (wanted && wanted.stop) text = 'Music: quiet';
    else if (wanted) text = `Music: ${wanted.playlist || wanted.tracks.join(', ') || 'playing'} at ${Math.round(wanted.volume)} %`;
    if (view.music.player && view.music.player.state !== 'unknown') text += ` (player: ${view.music.player.state})`;
    facts.append(h('li', { class: 'music', text }));
  }
  if (view.distractions && view.distractions.devices.length) {
    facts.append(h('li', { text: `Distractions: ${view.distractions.off ? 'switched off' : 'as usual'}` }));
  }
  const down = view.health.devices.filter((device) => !device.available);
  if (view.health.status !== 'ok' || down.length) {
    for (const device of down) {
      facts.append(h('li', { class: 'bad health', text: `${device.device} (${device.kind}) does not answer${device.error ? `: ${device.error}` : ''}` }));
    }
    if (!down.length) facts.append(h('li', { class: 'bad health', text: 'Degraded' }));
  } else {
    facts.append(h('li', { class: 'health', text: 'All devices answer' }));
  }
  container.replaceChildren(lights, facts);
}

function renderSession() {
  const entry = state.views[state.focus];
  if (!entry || !entry.view.session) return;
  const { view } = entry;
  const session = view.session;
  const stage = session.stage;
  const paused = session.status === 'paused';

  const who = session.profile ? ` · for ${profileName(session.profile)}` : '';
  $('session-where').textContent =
    `${view.title} · ${routineTitle(session.routine)}${who} · ${stage.index + 1} of ${session.stages.length}`;
  $('session').classList.toggle('paused', paused);

  // The guidance too: today's answers change it without a change of stage.
  const key = `${session.id}/${stage.index}/${stage.started_at}/${JSON.stringify(stage.guidance)}`;
  if (key !== state.stageKey) {
    state.stageKey = key;
    const g = stage.guidance;
    $('stage-title').textContent = stage.title || stage.name;
    $('guidance-summary').textContent = g.summary;
    $('guidance-steps').replaceChildren(...g.steps.map((step) => h('li', { text: step })));
    note($('guidance-caution'), 'Take care', g.caution);
  }
  renderPressure(stage); // a check-in answer changes it within the stage
  renderCheckin(session);

  const pulse = $('pulse');
  if (stage.tempo) {
    pulse.classList.remove('still');
    pulse.style.setProperty('--beat', `${(60 / stage.tempo).toFixed(2)}s`);
    $('tempo').textContent = `${stage.tempo} strokes a minute: move with the glow`;
  } else {
    pulse.classList.add('still');
    $('tempo').textContent = '';
  }

  $('pause').textContent = paused ? 'Resume' : 'Pause';
  $('ready').hidden = stage.timed;
  $('next').textContent = stage.index + 1 >= session.stages.length ? 'Finish' : 'Next';
  $('previous').disabled = false;
  renderPlan(session);
  renderToday(session);
  roomState($('session-room'), view);
}

function minutesText(seconds) {
  const m = Math.round(seconds / 6) / 10; // to a tenth of a minute
  return `${m} min`;
}

/** Every stage with its length (as fitted), the one now marked, and the whole. */
function renderPlan(session) {
  const total = minutesText(session.total_duration);
  $('plan-total').textContent = session.minutes === null
    ? `The stages: ${total} in all`
    : `The stages, fitted to the ${session.minutes} minutes you have: ${total} in all`;
  $('plan').replaceChildren(...session.stages.map((name, index) => {
    const seconds = session.durations[index];
    return h('li', { class: index === session.stage.index ? 'now' : '', data: { stage: name } },
      h('span', { class: 'plan-stage', text: stageTitle(session.routine, name) }),
      h('span', { class: 'plan-length', text: seconds === null ? 'when ready' : clock(seconds) }));
  }));
}

function note(node, label, text) {
  node.hidden = !text;
  node.replaceChildren(...(text ? [h('strong', { text: `${label}: ` }), text] : []));
}

/** Seconds left of `value` (as of when the view arrived), counting down while it runs. */
function left(entry, value, counting) {
  if (value === null || value === undefined) return null;
  if (!counting) return value;
  return Math.max(0, value - (performance.now() - entry.at) / 1000);
}

function clock(seconds) {
  const s = Math.ceil(seconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}` : `${minutes}:${rest}`;
}

/** Move the clocks and the ring; runs a few times a second on the session screen. */
function tick() {
  if (state.screen !== 'session') return;
  const entry = state.views[state.focus];
  if (!entry || !entry.view.session) return;
  const session = entry.view.session;
  const stage = session.stage;
  const running = session.status === 'running';
  const label = $('stage-left');
  if (stage.timed) {
    const stageLeft = left(entry, stage.remaining, running);
    label.textContent = clock(stageLeft);
    label.classList.remove('untimed');
    $('stage-left-label').textContent = running ? 'left in this stage' : 'paused';
    const fraction = stage.duration ? stageLeft / stage.duration : 0;
    $('ring-progress').style.setProperty('stroke-dashoffset', String(RING * (1 - fraction)));
  } else {
    label.textContent = "when you're ready";
    label.classList.add('untimed');
    $('stage-left-label').textContent = running ? '' : 'paused';
    $('ring-progress').style.setProperty('stroke-dashoffset', '0');
  }
  const total = left(entry, session.total_remaining, running && stage.timed);
  $('total-left').textContent = total === null ? '' : `${clock(total)} in all`;
}

// --- pressure check-ins ----------------------------------------------------------------------

const EASE_OFF = 'Ease off now';
const ANSWER_WORDS = { softer: 'softer', same: 'the same', firmer: 'firmer', too_much: 'too much' };

/** The stage's pressure line, as the check-in answers left it (updated whenever it changes). */
function renderPressure(stage) {
  const node = $('guidance-pressure');
  const text = stage.guidance.pressure;
  if (node.dataset.text === (text || '')) return;
  node.dataset.text = text || '';
  note(node, 'Pressure', text);
  node.classList.toggle('ease-off', Boolean(text && text.startsWith(EASE_OFF)));
}

/** The check-in of the stage now: its question and answers while open; once answered, what
 *  to do now (the server says it: the stage's pressure line begins with it too). */
function renderCheckin(session) {
  const section = $('checkin');
  const checkin = session.checkin;
  section.hidden = !checkin;
  if (!checkin) return;
  section.dataset.checkin = checkin.id;
  $('checkin-prompt').textContent = checkin.prompt;
  $('checkin-guidance').textContent = checkin.guidance;
  const open = checkin.answered === null;
  $('checkin-label').textContent = open ? 'Check in' : `They said: ${ANSWER_WORDS[checkin.answered] || checkin.answered}`;
  $('checkin-answers').hidden = !open;
  $('checkin-guidance').hidden = !open;
  const said = $('checkin-said');
  said.hidden = open;
  if (!open) {
    said.textContent = checkin.now || '';
    said.classList.toggle('ease-off', Boolean(checkin.now && checkin.now.startsWith(EASE_OFF)));
  }
  for (const button of $('checkin-answers').querySelectorAll('button')) button.disabled = false;
}

function wireCheckin() {
  for (const button of $('checkin-answers').querySelectorAll('button')) {
    button.addEventListener('click', async () => {
      const id = $('checkin').dataset.checkin;
      for (const other of $('checkin-answers').querySelectorAll('button')) other.disabled = true;
      const view = await command(`/rooms/${encodeURIComponent(state.focus)}/session/checkin`,
        { method: 'POST', body: { answer: button.dataset.answer, id } });
      if (view) onRoom(view); // at once, without waiting for the stream
      else for (const other of $('checkin-answers').querySelectorAll('button')) other.disabled = false;
    });
  }
}

// --- session controls -----------------------------------------------------------------------

function sessionCommand(action) {
  return command(`/rooms/${encodeURIComponent(state.focus)}/session/${action}`, { method: 'POST' });
}

function wireSession() {
  $('previous').addEventListener('click', () => sessionCommand('previous'));
  $('next').addEventListener('click', () => sessionCommand('next'));
  $('ready').addEventListener('click', ready);
  $('pause').addEventListener('click', () => {
    const entry = state.views[state.focus];
    const paused = entry && entry.view.session && entry.view.session.status === 'paused';
    sessionCommand(paused ? 'resume' : 'pause');
  });
  const dialog = $('confirm-end');
  $('end').addEventListener('click', () => dialog.showModal());
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'end') {
      command(`/rooms/${encodeURIComponent(state.focus)}/spa`, { method: 'DELETE' });
    }
    dialog.returnValue = '';
  });
}

// --- feedback ---------------------------------------------------------------------------

function feedbackDone(id) {
  return (localStorage.getItem(FEEDBACK_KEY) || '').split(',').includes(id);
}

function markFeedbackDone(id) {
  const done = (localStorage.getItem(FEEDBACK_KEY) || '').split(',').filter(Boolean).slice(-20);
  localStorage.setItem(FEEDBACK_KEY, [...done, id].join(','));
}

function segments(name, options, onchange) {
  return h('div', { class: 'segments' }, options.map(([value, text]) =>
    h('label', {}, h('input', { type: 'radio', name, value, onchange }), h('span', { text }))));
}

function showFeedback(room, session) {
  state.ended = { room, session };
  state.focus = room;
  $('feedback-form').reset();
  $('feedback-error').hidden = true;
  $('send').disabled = true;
  const stars = [1, 2, 3, 4, 5].map((n) => [String(n), String(n)]);
  $('rating').replaceChildren(segments('rating', stars, () => { $('send').disabled = false; }));
  // Pressure only for the stages that session reached where hands were at work (timed ones).
  const routine = state.routines[session.routine];
  const stages = (session.reached || session.stages).map((name) => {
    const stage = routine && routine.stages.find((s) => s.name === name);
    return { name, title: (stage && stage.title) || name, timed: stage ? stage.duration !== null : true };
  });
  const rows = stages.filter((s) => s.timed).map((s) => h('div', { class: 'stage-pressure', data: { stage: s.name } },
    h('p', { text: s.title }),
    segments(`pressure-${s.name}`, [['softer', 'Softer'], ['right', 'Right'], ['firmer', 'Firmer']])));
  $('pressure').replaceChildren(...rows);
  $('pressure-set').hidden = rows.length === 0;
  $('favourite').replaceChildren(h('option', { value: '', text: '—' }),
    ...stages.map((s) => h('option', { value: s.name, text: s.title })));
  show('feedback');
}

function renderFeedbackRoom() {
  const entry = state.ended && state.views[state.ended.room];
  if (!entry) return;
  const { view } = entry;
  $('restored').textContent = view.lights.restoring || !view.lights.synced
    ? 'Putting the room back as it was…'
    : 'The room is back as it was.';
  roomState($('feedback-room'), view);
}

async function sendFeedback(event) {
  event.preventDefault();
  const form = $('feedback-form');
  const data = new FormData(form);
  const rating = Number(data.get('rating'));
  if (!rating) return;
  const body = { rating, pressure: {}, notes: $('notes').value.trim() };
  for (const row of form.querySelectorAll('.stage-pressure')) {
    const hint = data.get(`pressure-${row.dataset.stage}`);
    if (hint) body.pressure[row.dataset.stage] = hint;
  }
  if ($('favourite').value) body.favourite_stage = $('favourite').value;
  $('send').disabled = true;
  state.sending = true;
  try {
    // To the session itself: the room may have moved on to the next one (a turn) meanwhile.
    const result = await api(`/sessions/${encodeURIComponent(state.ended.session.id)}/feedback`, { method: 'POST', body });
    markFeedbackDone(state.ended.session.id);
    showThanks('Thank you', result && result.profile
      ? `${result.profile.display_name || result.profile.name}'s profile has learned from it.`
      : 'It is kept with the session.');
  } catch (error) {
    if (error.code === 'feedback_already_given') {
      showGiven(error.detail.feedback);
    } else {
      $('feedback-error').textContent = error.message;
      $('feedback-error').hidden = false;
      $('send').disabled = false;
    }
  } finally {
    state.sending = false;
  }
}

function showThanks(title, text) {
  $('thanks-title').textContent = title;
  $('thanks-text').textContent = text;
  show('thanks');
}

/** The session's feedback came from another phone: it is taken (and learned) once. */
function showGiven(given) {
  if (state.ended) markFeedbackDone(state.ended.session.id);
  const when = new Date(given.at * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const whose = given.by ? `${profileName(given.by)}'s feedback` : 'The feedback';
  showThanks('Already given', `${whose} on this massage was given at ${when}, on another phone. It counts once.`);
}

/** "Your turn?": a massage for someone else than the one who just had theirs, linked to it. */
function renderTurn() {
  const section = $('turn');
  const entry = state.ended && state.views[state.ended.room];
  const view = entry && entry.view;
  let ended = state.ended && state.ended.session;
  if (view && view.last_session && ended && view.last_session.id === ended.id) ended = view.last_session;
  const others = state.profiles.filter((p) => !ended || p.name !== ended.profile);
  const choices = others.map((p) => [p.name, p.display_name || p.name]);
  if (ended && ended.profile) choices.push(['', 'No profile']);
  section.hidden = !ended || !view || Boolean(view.session) || Boolean(ended.followed_by) || choices.length === 0;
  if (section.hidden) return;
  const key = `${ended.id}/${choices.map((c) => c[0]).join(',')}`;
  if (section.dataset.key === key) return; // built already: keep what was picked
  section.dataset.key = key;
  $('turn-profile').replaceChildren(...choices.map(([value, text]) => h('option', { value, text })));
  $('turn-routine').replaceChildren(...Object.values(state.routines).map((r) =>
    h('option', { value: r.name, text: r.title || r.name, selected: r.name === view.routine })));
}

function wireFeedback() {
  $('feedback-form').addEventListener('submit', sendFeedback);
  $('skip').addEventListener('click', () => {
    if (state.ended) markFeedbackDone(state.ended.session.id);
    showThanks('Thank you', 'No feedback this time.');
  });
  $('turn-start').addEventListener('click', (event) => {
    const { room, session } = state.ended;
    startSpa(room, $('turn-routine').value, $('turn-profile').value, event.currentTarget, { follows: session.id });
  });
  $('home-button').addEventListener('click', () => show('home'));
}

// --- yes/no questions (today's and the profile's health) ---------------------------------

/** A one-tap yes/no question; a "where" one shows the body areas to pick once it is yes.
 *  `value`: false/null (no), true (yes, where not said) or a list of area ids. */
function question(id, text, where, value) {
  const yes = value === true || (Array.isArray(value) && value.length > 0);
  const picked = new Set(Array.isArray(value) ? value : []);
  const answer = h('span', { class: 'answer', text: yes ? 'Yes' : 'No' });
  const areas = where ? h('div', { class: 'areas', hidden: !yes, role: 'group', 'aria-label': `${text} Where` },
    state.areas.map((a) => h('button', {
      type: 'button', class: 'area', text: a.name, 'aria-pressed': String(picked.has(a.id)), data: { area: a.id },
      onclick: (event) => {
        const button = event.currentTarget;
        button.setAttribute('aria-pressed', String(button.getAttribute('aria-pressed') !== 'true'));
      },
    }))) : null;
  const toggle = h('button', {
    type: 'button', class: 'toggle', 'aria-pressed': String(yes),
    onclick: (event) => {
      const button = event.currentTarget;
      const now = button.getAttribute('aria-pressed') !== 'true';
      button.setAttribute('aria-pressed', String(now));
      answer.textContent = now ? 'Yes' : 'No';
      if (areas) areas.hidden = !now;
    },
  }, h('span', { class: 'question-text', text }), answer);
  return h('div', { class: 'question', data: { question: id } }, toggle, areas);
}

/** A question's answer as the API takes it: false, true, or the areas picked. */
function answerOf(node) {
  if (node.querySelector('.toggle').getAttribute('aria-pressed') !== 'true') return false;
  const areas = [...node.querySelectorAll('.area[aria-pressed="true"]')].map((b) => b.dataset.area);
  return node.querySelector('.areas') && areas.length ? areas : true;
}

// --- today's questions, while getting ready -------------------------------------------------

/** The day's questions on the getting-ready screen, until they are answered (on any phone). */
function renderToday(session) {
  const section = $('today');
  const today = session.today;
  section.hidden = !today || !today.asking;
  if (section.hidden) return;
  if (state.today.session !== session.id) { // a new session: its questions, all "no"
    state.today = { session: session.id, again: false };
    $('today-questions').replaceChildren(...today.questions.map((q) => question(q.id, q.text, q.where, false)));
  }
  const asking = !today.answered || state.today.again;
  $('today-questions').hidden = !asking;
  $('today-answered').hidden = asking;
}

/** The answers to send: only when a question is shown and one is yes (else null). */
function todayAnswers() {
  if ($('today').hidden || $('today-questions').hidden) return null;
  const answers = {};
  for (const node of $('today-questions').querySelectorAll('.question')) {
    const value = answerOf(node);
    if (value !== false) answers[node.dataset.question] = value;
  }
  return Object.keys(answers).length ? answers : null;
}

/** Ready: today's answers first (if any is yes), then the massage; never the massage
 *  without them, and a stop sign ends it here with the quiet room offered. */
async function ready() {
  const room = state.focus;
  const entry = state.views[room];
  const session = entry && entry.view.session;
  const button = $('ready');
  button.disabled = true;
  try {
    const answers = todayAnswers();
    if (session && answers) {
      try {
        await api(`/rooms/${encodeURIComponent(room)}/session/today`, { method: 'POST', body: answers });
      } catch (error) {
        if (error.code === 'no_massage_today') showNotToday(room, session, error);
        else toast(error.message);
        return;
      }
    }
    await sessionCommand('next');
  } finally {
    button.disabled = false;
  }
}

/** No massage today: the plain explanation (each stop sign's why on the phone that asked)
 *  and the quiet room. */
function showNotToday(room, session, error) {
  const again = state.notToday && state.notToday.session === session.id;
  state.notToday = { room, session: session.id, profile: session.profile };
  $('not-today-text').textContent = 'A fever or feeling unwell, or a calf that is swollen, warm and painful, '
    + 'means no massage today (for the calf: see a doctor today). Nothing of the massage was done, '
    + 'and the room goes back as it was.';
  const signs = (error && error.detail && error.detail.stop_signs) || [];
  const why = (text) => `${text[0].toUpperCase()}${text.slice(1)}.`;
  if (error) $('not-today-why').replaceChildren(...signs.map((s) => h('li', { text: why(s.why) })));
  else if (!again) $('not-today-why').replaceChildren(); // the answers' reasons: the asker's only
  if (state.screen !== 'not-today') show('not-today');
}

function wireToday() {
  $('today-answered').append(' ', h('button', { type: 'button', class: 'link', text: 'Change the answers',
    onclick: () => { state.today.again = true; render(); } }));
  $('quiet-room').addEventListener('click', (event) => {
    const gone = state.notToday;
    if (gone) startSpa(gone.room, null, gone.profile, event.currentTarget, { roomOnly: true });
  });
  $('not-today-home').addEventListener('click', () => show('home'));
}

// --- a profile's health answers -------------------------------------------------------------

// The profile's standing questions (HealthAnswers in ambiance/core/profiles.py): id, words, where?
const HEALTH = [
  ['pregnant', 'Pregnant?', false],
  ['blood_thinners', 'Blood thinners or a clotting disorder?', false],
  ['dvt_history', 'Ever had a deep-vein thrombosis (a blood clot)?', false],
  ['varicose_veins', 'Varicose veins? Where?', true],
  ['osteoporosis', 'Osteoporosis (fragile bones)?', false],
  ['recent_injury', 'A recent injury or operation? Where?', true],
  ['skin_condition', 'A rash or broken skin? Where?', true],
  ['nut_allergy', 'A nut allergy?', false],
];

/** "Health" under the profile picker: shown when a profile is picked. */
function healthButton(select) {
  const button = h('button', { type: 'button', class: 'link health', text: 'Health questions', hidden: !select.value,
    onclick: () => openHealth(select.value) });
  select.addEventListener('change', () => { button.hidden = !select.value; });
  return button;
}

/** The profile's answers, asked for now (they are never in the live stream), in a dialog. */
async function openHealth(name) {
  let profile;
  try {
    profile = await api(`/profiles/${encodeURIComponent(name)}`);
  } catch (error) {
    toast(error.message);
    return;
  }
  const answers = profile.health || {};
  state.health = { name, before: Object.fromEntries(HEALTH.map(([id]) => [id, answers[id] || false])) };
  $('health-title').textContent = `Health: ${profile.display_name || profile.name}`;
  $('health-error').hidden = true;
  $('health-questions').replaceChildren(...HEALTH.map(([id, text, where]) => question(id, text, where, answers[id])));
  $('health-dialog').showModal();
}

async function saveHealth(event) {
  event.preventDefault();
  const dialog = $('health-dialog');
  if (!event.submitter || event.submitter.value !== 'save' || !state.health) {
    dialog.close();
    return;
  }
  const { name, before } = state.health;
  const changes = {}; // only what changed: an answer never given stays unanswered
  for (const node of $('health-questions').querySelectorAll('.question')) {
    const value = answerOf(node);
    if (JSON.stringify(value) !== JSON.stringify(before[node.dataset.question])) changes[node.dataset.question] = value;
  }
  if (Object.keys(changes).length) {
    $('health-save').disabled = true;
    try {
      await api(`/profiles/${encodeURIComponent(name)}`, { method: 'PATCH', body: { health: changes } });
    } catch (error) {
      $('health-error').textContent = error.message;
      $('health-error').hidden = false;
      return;
    } finally {
      $('health-save').disabled = false;
    }
  }
  state.health = null;
  $('health-questions').replaceChildren(); // not kept on screen once closed
  dialog.close();
}

function wireHealth() {
  $('health-form').addEventListener('submit', saveHealth);
  $('health-dialog').addEventListener('close', () => {
    state.health = null;
    $('health-questions').replaceChildren();
  });
}

// --- start ------------------------------------------------------------------------------

async function load() {
  const [rooms, routines, profiles, areas] = await Promise.all(
    [api('/rooms'), api('/routines'), api('/profiles'), api('/areas')]);
  state.areas = areas.filter((a) => !a.caution);
  state.rooms = rooms;
  state.routines = Object.fromEntries(routines.map((r) => [r.name, r]));
  state.profiles = profiles;
}

async function main() {
  tokenFromAddress();
  window.addEventListener('hashchange', tokenFromAddress); // pasted into an open page
  wireSession();
  wireCheckin();
  wireFeedback();
  wireToday();
  wireHealth();
  show('home');
  $('home-empty').hidden = false;
  for (;;) {
    try {
      await load();
      break;
    } catch (error) {
      $('home-empty').textContent = `Cannot reach ambiance (${error.message}); trying again…`;
      await new Promise((resolve) => { setTimeout(resolve, 3000); });
    }
  }
  buildHome();
  connect();
  setInterval(tick, 250);
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js').catch(() => { /* the app works without it */ });
  }
}

main();
